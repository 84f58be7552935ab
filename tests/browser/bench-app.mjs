// The phone app on a slow phone: time from navigation to the service list being usable (the
// services shown and the search box taking input), under Chromium's "Fast 3G" network
// emulation and a 4× CPU slowdown, with a cold cache (a fresh browser profile each run) and a
// warm one (the same profile, navigating again). A benchmark, not a test: it prints figures.
//
// Usage: node bench-app.mjs BASE_URL [RUNS]
import { chromium } from 'playwright-core';
import { chromiumArgs, executablePath } from './chromium.mjs';

const [base, runsText] = process.argv.slice(2);
if (!base) {
  console.error('usage: node bench-app.mjs BASE_URL [RUNS]');
  process.exit(2);
}
const runs = Number(runsText ?? 5);

// DevTools' "Fast 3G" preset: 562.5 ms of latency, about 1.44 Mbit/s down and 675 kbit/s up.
const FAST_3G = {
  offline: false,
  latency: 562.5,
  downloadThroughput: (1.44 * 1024 * 1024) / 8,
  uploadThroughput: (675 * 1024) / 8,
};

async function throttled(context) {
  const page = await context.newPage();
  const session = await context.newCDPSession(page);
  await session.send('Network.enable');
  await session.send('Network.emulateNetworkConditions', FAST_3G);
  await session.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  return page;
}

async function usable(page) {
  const started = Date.now();
  await page.goto(`${base}/app/services`);
  await page.waitForSelector('[data-test=service]');
  await page.waitForFunction(() => {
    const input = document.querySelector('[data-test=service-search] input');
    return input && !input.disabled;
  });
  return Date.now() - started;
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { runs: sorted.length, min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] };
}

const browser = await chromium.launch({ executablePath, args: chromiumArgs, headless: true });
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 3 };
const cold = [];
const warm = [];
for (let run = 0; run < runs; run += 1) {
  const context = await browser.newContext(phone);
  const page = await throttled(context);
  cold.push(await usable(page));
  warm.push(await usable(page));
  await context.close();
}
await browser.close();
console.log(JSON.stringify({ fast_3g_4x_cpu: { cold_ms: summary(cold), warm_ms: summary(warm) } }, null, 2));
