// Drives the 3D head viewer page in Debian's chromium (playwright-core) and records what it shows.
// Usage: node head_viewer_check.mjs VIEWER_URL OUT_DIR
// Waits for window.headViewer to load the GLB, saves a screenshot of the canvas at the photo's
// expression, with the jaw slider at 1, and with the head turned; writes OUT_DIR/head_viewer.json.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error('usage: node head_viewer_check.mjs VIEWER_URL OUT_DIR');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],  // WebGL on the CPU (SwiftShader)
});
const report = { consoleErrors: [], requests: [], failedRequests: [] };
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 640, height: 560 } });
  page.on('console', (message) => { if (message.type() === 'error') report.consoleErrors.push(message.text()); });
  page.on('pageerror', (error) => report.consoleErrors.push(String(error)));
  const network = (request) => !request.url().startsWith('blob:') && !request.url().startsWith('data:');  // the GLB's own images
  page.on('request', (request) => { if (network(request)) report.requests.push(new URL(request.url()).pathname); });
  page.on('requestfailed', (request) => { if (network(request)) report.failedRequests.push(request.url()); });
  page.on('response', (response) => { if (response.status() >= 400) report.failedRequests.push(`${response.status()} ${response.url()}`); });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.headViewer && (window.headViewer.loaded || window.headViewer.error), null,
                             { timeout: 90000 });
  Object.assign(report, await page.evaluate(() => ({
    loaded: window.headViewer.loaded, error: window.headViewer.error, morphNames: window.headViewer.morphNames,
    bones: window.headViewer.bones, meshes: window.headViewer.meshes,
    sliders: Object.fromEntries([...document.querySelectorAll('input[type=range]')].map((s) => [s.id, Number(s.value)])),
  })));
  const canvas = page.locator('#stage canvas');
  const shot = async (name) => { const path = join(outDir, name); await canvas.screenshot({ path }); return path; };
  report.start = await shot('viewer_start.png');
  await page.evaluate(() => window.headViewer.set('jaw', 1));
  report.jaw = await shot('viewer_jaw.png');
  await page.evaluate(() => { window.headViewer.set('jaw', 0); window.headViewer.set('turn', 45); });
  report.turn = await shot('viewer_turn.png');
  // The slider itself, as a user moves it: the jaw slider dragged to its end.
  await page.evaluate(() => window.headViewer.set('turn', 0));
  const jaw = page.locator('#jaw');
  const box = await jaw.boundingBox();
  await page.mouse.click(box.x + box.width - 2, box.y + box.height / 2);
  report.jawByMouse = await page.evaluate(() => Number(document.getElementById('jaw').value));
  report.jawClicked = await shot('viewer_jaw_clicked.png');
} catch (error) {
  report.fatal = String(error);
  exitCode = 1;
} finally {
  await browser.close();
}
await writeFile(join(outDir, 'head_viewer.json'), JSON.stringify(report, null, 2));
process.exit(exitCode);
