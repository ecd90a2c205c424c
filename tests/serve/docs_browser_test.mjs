// Renders the API docs in Debian's chromium with every non-local request blocked (no network).
// Usage: node tests/serve/docs_browser_test.mjs BASE_URL SCREENSHOT_PATH
// Prints one JSON line: the operations Swagger UI drew, the submit form's text, and every request that
// tried to leave 127.0.0.1 (there must be none).
import { chromium } from 'playwright-core';

const [baseUrl, screenshotPath] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const report = { external: [], failed: [], consoleErrors: [] };
let failed = null;
try {
  const context = await browser.newContext({ viewport: { width: 1300, height: 1400 } });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    report.external.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('response', (r) => { if (r.status() >= 400) report.failed.push(`${r.status()} ${r.url()}`); });
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()); });

  await page.goto(`${baseUrl}/docs`, { waitUntil: 'domcontentloaded' });
  await page.locator('.swagger-ui .opblock').first().waitFor({ state: 'visible', timeout: 30000 });
  report.title = (await page.locator('.swagger-ui .info .title').innerText()).trim();
  report.operations = await page.locator('.swagger-ui .opblock-summary-path').allInnerTexts();
  // Open the submit operation: its form fields (with their enums) must be drawn.
  await page.locator('.opblock-post .opblock-summary').first().click();
  await page.locator('.opblock-post .parameters-container, .opblock-post .opblock-body').first().waitFor({ timeout: 10000 });
  report.submitText = (await page.locator('.opblock-post').first().innerText()).slice(0, 4000);
  await page.screenshot({ path: screenshotPath, fullPage: false });
} catch (error) {
  failed = String(error && error.message ? error.message.split('\n')[0] : error);
} finally {
  await browser.close();
}
report.ok = failed === null;
if (failed) report.error = failed;
console.log(JSON.stringify(report));
process.exit(failed ? 1 : 0);
