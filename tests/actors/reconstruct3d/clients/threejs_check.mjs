// Loads a GLB with three.js (node_modules/three) in Debian's chromium, driven by playwright-core.
// Usage: node threejs_check.mjs GLB_PATH OUT_DIR
// Serves threejs_page.html, node_modules/three and the GLB from a tiny static server on 127.0.0.1,
// loads the head, renders it at its default expression, with jawOpen = 1, and posed (jaw and head
// bones turned, then an eye), reads three.js's own CPU skinning of every vertex, and saves
// screenshots in OUT_DIR. Writes what it saw to OUT_DIR/threejs_report.json; the Python test asserts.
import { createServer } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [glbPath, outDir] = process.argv.slice(2);
if (!glbPath || !outDir) {
  console.error('usage: node threejs_check.mjs GLB_PATH OUT_DIR');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const threeRoot = resolve(here, '../../../../node_modules/three');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.glb': 'model/gltf-binary' };

function inside(root, relative) {  // a path under root, or null for anything that escapes it
  const path = normalize(join(root, relative));
  return path.startsWith(root + sep) ? path : null;
}

const server = createServer(async (request, response) => {
  const url = new URL(request.url, 'http://127.0.0.1');
  let path = null;
  if (url.pathname === '/favicon.ico') { response.writeHead(204); response.end(); return; }
  if (url.pathname === '/') path = join(here, 'threejs_page.html');
  else if (url.pathname === '/head.glb') path = resolve(glbPath);
  else if (url.pathname.startsWith('/three/')) path = inside(threeRoot, decodeURIComponent(url.pathname.slice('/three/'.length)));
  try {
    if (path === null) throw new Error('not served');
    const body = await readFile(path);
    response.writeHead(200, { 'Content-Type': TYPES[extname(path)] || 'application/octet-stream' });
    response.end(body);
  } catch {
    response.writeHead(404);
    response.end();
  }
});
await new Promise((done) => server.listen(0, '127.0.0.1', done));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],  // WebGL on the CPU (SwiftShader)
});
const report = { consoleErrors: [], failedRequests: [] };
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 512, height: 512 } });
  page.on('console', (message) => { if (message.type() === 'error') report.consoleErrors.push(message.text()); });
  page.on('pageerror', (error) => report.consoleErrors.push(String(error)));
  page.on('requestfailed', (request) => report.failedRequests.push(request.url()));
  page.on('response', (response) => { if (response.status() >= 400) report.failedRequests.push(`${response.status()} ${response.url()}`); });
  await page.goto(`${base}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 60000 });
  report.info = await page.evaluate(() => window.loadHead('/head.glb'));
  const canvas = page.locator('canvas');
  const shot = async (name) => { await canvas.screenshot({ path: join(outDir, name) }); return join(outDir, name); };

  report.default = await page.evaluate(() => window.renderFrame('default'));
  report.defaultVertices = await page.evaluate(() => window.skinnedVertices());
  report.screenshots = [await shot('threejs_default.png')];

  await page.evaluate(() => { window.setMorph('jawOpen', 1.0); });
  report.jawOpen = await page.evaluate(() => window.renderFrame('jawOpen'));
  report.jawOpenChanged = await page.evaluate(() => window.changedPixels('default', 'jawOpen'));
  report.screenshots.push(await shot('threejs_jaw_open.png'));

  await page.evaluate(() => window.pose({ jaw: [1, 0, 0, 20], head: [0, 1, 0, 25] }));
  report.posed = await page.evaluate(() => window.renderFrame('posed'));
  report.posedChanged = await page.evaluate(() => window.changedPixels('jawOpen', 'posed'));
  report.posedVertices = await page.evaluate(() => window.skinnedVertices());
  report.screenshots.push(await shot('threejs_posed.png'));

  await page.evaluate(() => window.pose({ jaw: [1, 0, 0, 20], head: [0, 1, 0, 25], eye_l: [0, 1, 0, 35], eye_r: [0, 1, 0, 35] }));
  report.eyes = await page.evaluate(() => window.renderFrame('eyes'));
  report.eyesChanged = await page.evaluate(() => window.changedPixels('posed', 'eyes'));
} catch (error) {
  report.error = String(error && error.stack || error);
  exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
// A file, not stdout: process.exit() would cut a large piped stdout short.
await writeFile(join(outDir, 'threejs_report.json'), JSON.stringify(report));
process.exit(exitCode);
