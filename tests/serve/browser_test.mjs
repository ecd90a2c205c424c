// Drives the Gradio UI in Debian's chromium through playwright-core.
// Usage: node tests/serve/browser_test.mjs BASE_URL PHOTO_PATH SCREENSHOT_PATH
// Opens BASE_URL/ui/, uploads PHOTO_PATH, ticks "3D head", runs, waits for the result, checks that the
// 2D avatar image and the 3D viewer canvas are shown, saves a full-page screenshot, then deletes the
// data with the UI's button. Prints one JSON
// line with what it saw; exits 1 (after a screenshot) when a check fails.
import { chromium } from 'playwright-core';

const [baseUrl, photoPath, screenshotPath] = process.argv.slice(2);
if (!baseUrl || !photoPath || !screenshotPath) {
  console.error('usage: node browser_test.mjs BASE_URL PHOTO_PATH SCREENSHOT_PATH');
  process.exit(2);
}
const RESULT_TIMEOUT_MS = Number(process.env.UI_RESULT_TIMEOUT_MS || 300000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { consoleErrors: [], failedResponses: [], progressSeen: false };
let failed = null;
const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
page.on('response', (response) => { if (response.status() >= 400) report.failedResponses.push(`${response.status()} ${response.url()}`); });
page.on('console', (message) => { if (message.type() === 'error') report.consoleErrors.push(message.text()); });

try {
  await page.goto(`${baseUrl.replace(/\/$/, '')}/ui/`, { waitUntil: 'domcontentloaded' });
  await page.locator('#run').waitFor({ state: 'visible', timeout: 60000 });

  // Upload the photo and wait for its preview.
  await page.locator('#photo input[type="file"]').setInputFiles(photoPath);
  await page.locator('#photo img').first().waitFor({ state: 'visible', timeout: 60000 });

  await page.locator('#make-3d input[type="checkbox"]').check();
  await page.locator('#run').click();

  // A progress indicator shows while the job runs (Gradio's progress bar / status tracker).
  report.progressSeen = await page
    .locator('.progress-bar, .progress-text, .eta-bar, .progress-level')
    .first()
    .waitFor({ state: 'attached', timeout: 20000 })
    .then(() => true, () => false);

  // The result: the avatar image beside the input, the 3D viewer's canvas, the 7 views.
  const avatar = page.locator('#avatar img').first();
  await avatar.waitFor({ state: 'visible', timeout: RESULT_TIMEOUT_MS });
  await page.waitForFunction(
    () => { const img = document.querySelector('#avatar img'); return img && img.complete && img.naturalWidth > 0; },
    null, { timeout: 60000 });
  report.avatar = await avatar.evaluate((img) => ({ width: img.naturalWidth, height: img.naturalHeight, src: img.src.slice(0, 120) }));

  // The rigged head's three.js viewer lives in an iframe (serve/head_viewer.py).
  const canvas = page.frameLocator('#head-viewer iframe').locator('canvas').first();
  await canvas.waitFor({ state: 'visible', timeout: 120000 });
  await page.waitForTimeout(3000); // let the viewer size itself, load the GLB and draw
  report.canvas = await canvas.evaluate((c) => ({ width: c.width, height: c.height, shownWidth: c.clientWidth }));
  // The viewer's pixels, for the caller to check that a head was drawn (not just an empty canvas).
  report.canvasShot = screenshotPath.replace(/\.png$/, '') + '_head3d.png';
  await canvas.screenshot({ path: report.canvasShot });

  report.views = await page.locator('#views img').count();
  report.status = (await page.locator('#status').innerText()).trim();
  report.tone = (await page.locator('#tone').innerText()).trim();
  report.swatches = await page.locator('#tone .swatch').count();
  report.downloads = await page.locator('#downloads a').count();

  if (!(report.avatar.width > 0)) failed = 'the avatar image did not load';
  else if (!(report.canvas.width > 0 && report.canvas.height > 0)) failed = 'the 3D viewer canvas has no size';
  else if (report.views < 7) failed = `expected 7 views in the gallery, saw ${report.views}`;
  else if (!report.status.startsWith('Done')) failed = `status is not Done: ${report.status}`;

  // Screenshot the result, then delete the data through the UI.
  await page.screenshot({ path: screenshotPath, fullPage: true });
  if (!failed) {
    await page.locator('#delete').click();
    await page.locator('#status', { hasText: 'Deleted' }).waitFor({ timeout: 30000 });
    report.deleted = (await page.locator('#status').innerText()).trim();
    report.avatarAfterDelete = await page.locator('#avatar img').count();
  }
} catch (error) {
  failed = String(error && error.message ? error.message.split('\n')[0] : error);
  await page.screenshot({ path: screenshotPath, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
report.ok = failed === null;
if (failed) report.error = failed;
console.log(JSON.stringify(report));
process.exit(failed ? 1 : 0);
