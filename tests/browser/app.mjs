// Drives the phone app (用户端) in Debian's Chromium with a phone's viewport and touch: a phone
// opening the bare address lands in the app, browses and searches the services, and a new
// customer signs up with a one-time code (the test reads it from the mail outbox: this script
// prints `NEED_CODE <address>` and reads the code from its standard input), then sees
// themselves under 我的. Every screen must load with no console error and no failed request;
// screenshots of each go to the folder the configuration names.
//
// Usage: node app.mjs '<JSON configuration>' (see tests/api/console.rs). Prints one JSON line
// with what it checked; exits non-zero at the first failure.
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { chromiumArgs, executablePath, recorder, watch } from './chromium.mjs';

const config = JSON.parse(process.argv[2] ?? '{}');
const { base, email, shots } = config;
if (!base || !email) {
  console.error("usage: node app.mjs '{\"base\":…,\"email\":…,\"shots\":…}'");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const report = { screens: [], checks: [] };
const problems = [];

const { check, shot } = recorder(report, shots);

const browser = await chromium.launch({ executablePath, args: chromiumArgs, headless: true });
try {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'zh-CN',
    userAgent:
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  });
  const page = await context.newPage();
  watch(page, 'customer', problems);

  // A phone opening the bare address lands in the app, on the services.
  await page.goto(`${base}/`);
  await page.waitForSelector('[data-test=service]');
  check(page.url().includes('/app/services'), `a phone lands in the app (${page.url()})`);
  const count = await page.locator('[data-test=service]').count();
  check(count === 6, `the six services are listed (${count})`);
  const manifest = await page.evaluate(async () => {
    const link = document.querySelector('link[rel=manifest]');
    const response = await fetch(link.href);
    return { type: response.headers.get('content-type'), body: await response.json() };
  });
  check(manifest.type.startsWith('application/manifest+json') && manifest.body.start_url === '/app/', 'the app has its web manifest');
  await shot(page, 'app-services');

  // Search in Chinese and in English.
  for (const [term, expected] of [
    ['保洁', ['日常保洁', '深度保洁']],
    ['repair', ['家庭维修']],
  ]) {
    const answered = page.waitForResponse((response) => response.url().includes('/api/v1/catalogue?'));
    await page.fill('[data-test=service-search] input', term);
    await page.press('[data-test=service-search] input', 'Enter');
    await answered;
    await page.waitForFunction(
      (names) => {
        const cards = [...document.querySelectorAll('[data-test=service]')].map((card) => card.textContent);
        return cards.length === names.length && names.every((name) => cards.some((text) => text.includes(name)));
      },
      expected,
    );
    check(true, `searching ${term} finds ${expected.join('、')}`);
  }
  await shot(page, 'app-search');

  // 我的 asks a visitor to sign in; a new customer signs up with a code from their mail.
  await page.tap('[data-test=tabbar] >> text=我的');
  await page.waitForSelector('[data-test=sign-in]');
  await shot(page, 'app-sign-in');
  await page.tap('[data-test=to-register]');
  await page.waitForSelector('[data-test=register]');
  await page.fill('[data-test=register] [data-test=login] input', email);
  await page.tap('[data-test=send-code]');
  console.log(`NEED_CODE ${email}`);
  const code = (await lines.next()).value?.trim();
  check(/^\d{4,8}$/.test(code ?? ''), 'the code arrived by mail');
  await page.fill('[data-test=register] [data-test=code] input', code);
  await page.fill('[data-test=register] [data-test=name] input', '陈晓雨');
  await page.fill('[data-test=register] [data-test=password] input', 'a-good-password');
  await shot(page, 'app-register');
  await page.tap('[data-test=register] [data-test=submit]');
  await page.waitForSelector('[data-test=services] [data-test=service]');
  await page.tap('[data-test=tabbar] >> text=我的');
  await page.waitForSelector('[data-test=me] [data-test=who]');
  const who = await page.textContent('[data-test=who]');
  check(who.includes(email) && who.includes('用户'), `the new customer is signed in (${who.trim()})`);
  await shot(page, 'app-me');

  // The language switch: English, then back.
  await page.tap('[data-test=locale]');
  await page.waitForFunction(() => document.querySelector('[data-test=tabbar]')?.textContent.includes('Services'));
  await shot(page, 'app-me-en');
  await page.tap('[data-test=locale]');
  await page.tap('[data-test=sign-out]');
  await page.waitForSelector('[data-test=sign-in]');
  check(true, 'signing out returns to the sign-in screen');
} catch (error) {
  problems.push(String(error?.stack ?? error));
  for (const context of browser.contexts()) {
    for (const [index, open] of context.pages().entries()) {
      await open.screenshot({ path: `${shots}/app-failure-${index}.png` }).catch(() => undefined);
    }
  }
} finally {
  await browser.close();
}

console.log(JSON.stringify({ ...report, problems }));
process.exit(problems.length === 0 ? 0 : 1);
