// The console's dashboard, timed: from navigation to its four charts drawn in Chromium, and in
// the same run the dashboard's API call on its own. A benchmark, not a test: it prints figures.
//
// Usage: node bench-dashboard.mjs BASE_URL LOGIN PASSWORD [RUNS]
// (an admin's login against a running `anjia serve`, for example on `anjia demo-data --months 6`).
import { chromium } from 'playwright-core';
import { chromiumArgs, executablePath } from './chromium.mjs';

const [base, login, password, runsText] = process.argv.slice(2);
if (!password) {
  console.error('usage: node bench-dashboard.mjs BASE_URL LOGIN PASSWORD [RUNS]');
  process.exit(2);
}
const runs = Number(runsText ?? 7);

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { runs: sorted.length, min: sorted[0], median: at(0.5), max: sorted[sorted.length - 1] };
}

// The API on its own: sign in, then the dashboard's one call, one after another.
const signedIn = await fetch(`${base}/api/v1/sessions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ login, password }),
});
if (!signedIn.ok) throw new Error(`sign-in: ${signedIn.status}`);
const { access_token: token } = await signedIn.json();
const api = [];
for (let run = 0; run < runs + 1; run += 1) {
  const started = performance.now();
  const response = await fetch(`${base}/api/v1/admin/dashboard`, { headers: { authorization: `Bearer ${token}` } });
  await response.json();
  if (run > 0) api.push(performance.now() - started); // the first call warms the pool
}

// The page: each run a fresh navigation to the dashboard, signed in (the session resumes from
// the refresh token, as after a reload), until every chart's canvas shows something.
const browser = await chromium.launch({ executablePath, args: chromiumArgs, headless: true });
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
const page = await context.newPage();
await page.goto(`${base}/admin/`);
await page.fill('[data-test=login]', login);
await page.fill('[data-test=password]', password);
await page.click('[data-test=submit]');
await page.waitForSelector('[data-chart] canvas');

const drawn = () =>
  [...document.querySelectorAll('[data-chart]')].length === 4 &&
  [...document.querySelectorAll('[data-chart] canvas')].every((canvas) => {
    if (canvas.width === 0) return false;
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set();
    for (let index = 0; index < pixels.length; index += 4 * 97) {
      colours.add(pixels[index] * 65536 + pixels[index + 1] * 256 + pixels[index + 2]);
      if (colours.size > 3) return true;
    }
    return false;
  });

const page_ = [];
const inPage = [];
for (let run = 0; run < runs + 1; run += 1) {
  const answered = page.waitForResponse((response) => response.url().includes('/api/v1/admin/dashboard'));
  const started = Date.now();
  await page.goto(`${base}/admin/dashboard`);
  const response = await answered;
  await page.waitForFunction(drawn, undefined, { polling: 16, timeout: 60_000 });
  const elapsed = Date.now() - started;
  const timing = response.request().timing();
  if (run > 0) {
    page_.push(elapsed);
    inPage.push(timing.responseEnd - timing.requestStart);
  }
}
await browser.close();

const round = (figures) => Object.fromEntries(Object.entries(figures).map(([key, value]) => [key, Math.round(value * 10) / 10]));
console.log(
  JSON.stringify(
    {
      navigation_to_charts_ms: round(summary(page_)),
      dashboard_api_in_page_ms: round(summary(inPage)),
      dashboard_api_alone_ms: round(summary(api)),
    },
    null,
    2,
  ),
);
