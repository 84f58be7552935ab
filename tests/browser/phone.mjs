// Drives the phone app with two or three people at once, each in their own browser context
// (a phone's viewport and touch, 390×844), over a real `anjia serve` and PostgreSQL.
//
// Scenario `serve`: a customer registers with a code read from the outbox (this script prints
// `NEED_CODE <address>` and reads the code from stdin), books a named worker's free slot with
// their browser's position as the address, pays in the sandbox and watches the order's page
// change without a reload as the worker (the second context) accepts, departs (the arrival
// estimate appears on the customer's page), is refused a check-in 2 km away with the distance
// shown, checks in at the door, starts and finishes; the customer reviews and the worker
// replies, and the customer sees the reply.
//
// Scenario `race`: two workers grab one order at once: one gets it, the other is told it was
// taken. A third worker's income chart draws figures equal to the income route's, and a
// withdrawal asked for shows as waiting for review.
//
// Every screen must load with no console error and no failed request (the refusals the
// scenario provokes excepted); screenshots go to the configured folder.
//
// Usage: node phone.mjs '<JSON configuration>' (see tests/api/phone.rs). Prints one JSON line
// with what it checked; exits non-zero at the first failure.
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { chromiumArgs, executablePath, recorder, watch } from './chromium.mjs';

const config = JSON.parse(process.argv[2] ?? '{}');
const { base, shots, scenario } = config;
if (!base || !shots || !scenario) {
  console.error("usage: node phone.mjs '{\"base\":…,\"shots\":…,\"scenario\":\"serve\"|\"race\",…}'");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const report = { scenario, screens: [], checks: [] };
const problems = [];
/** Refusals a step provokes on purpose: (path part, status) pairs allowed once each. */
const expected = [];

const { check, shot } = recorder(report, shots);

const browser = await chromium.launch({ executablePath, args: chromiumArgs, headless: true });

/** A phone: its own context (cookies, storage, position), watched for errors. */
async function phone(who, position) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    permissions: ['geolocation'],
    geolocation: { ...position, accuracy: 15 },
    userAgent:
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  });
  const page = await context.newPage();
  watch(page, who, problems, (response) => {
    const allowed = expected.findIndex(([part, status]) => response.url().includes(part) && response.status() === status);
    if (allowed >= 0) expected.splice(allowed, 1);
    return allowed >= 0;
  });
  return { context, page };
}

async function signIn(page, login, password) {
  await page.goto(`${base}/app/sign-in`);
  await page.fill('[data-test=sign-in] [data-test=login] input', login);
  await page.fill('[data-test=sign-in] [data-test=password] input', password);
  await page.tap('[data-test=sign-in] [data-test=submit]');
  await page.waitForSelector('[data-test=tabbar]');
}

async function statusOf(page, selector) {
  return page.getAttribute(selector, 'data-status');
}

async function serve() {
  const { door, away, worker, email } = config;
  const customer = await phone('customer', door);
  const working = await phone('worker', away);
  const c = customer.page;
  const w = working.page;

  // The customer signs up with a mailed code.
  await c.goto(`${base}/app/register`);
  await c.fill('[data-test=register] [data-test=login] input', email);
  await c.tap('[data-test=send-code]');
  console.log(`NEED_CODE ${email}`);
  const code = (await lines.next()).value?.trim();
  await c.fill('[data-test=register] [data-test=code] input', code);
  await c.fill('[data-test=register] [data-test=name] input', '林女士');
  await c.fill('[data-test=register] [data-test=password] input', 'a-good-password');
  await c.tap('[data-test=register] [data-test=submit]');
  await c.waitForSelector('[data-test=services] [data-test=service]');
  check(true, 'a customer signed up with a code from the outbox');

  // The directory, the worker's page, then booking them.
  await c.tap('[data-test=tab-workers]');
  await c.waitForSelector(`[data-test=worker-card][data-worker="${worker.id}"]`);
  await shot(c, 'phone-workers');
  await c.tap(`[data-test=worker-card][data-worker="${worker.id}"]`);
  await c.waitForSelector('[data-test=worker-page] [data-test=ratings]');
  check((await c.locator('[data-test=worker-page] [data-test=certificate]').count()) > 0, "the worker's certificates show as verified");
  await shot(c, 'phone-worker');
  await c.tap('[data-test=book-worker]');
  await c.waitForSelector('[data-test=book] [data-test=book-worker]');
  await c.fill('[data-test=address-city] input', '上海市');
  await c.fill('[data-test=address-district] input', '黄浦区');
  await c.fill('[data-test=address-detail] input', '人民大道 200 号 5 楼');
  await c.fill('[data-test=address-contact] input', '林女士');
  await c.fill('[data-test=address-phone] input', '13900001111');
  await c.tap('[data-test=locate]');
  await c.waitForSelector('[data-test=located]');
  check((await c.textContent('[data-test=located]')).includes('WGS-84'), 'the address takes the browser position, as WGS-84');
  // The soonest free time (today's, or just after midnight tomorrow's), so that check-in,
  // which opens an hour before the start, is open when the worker arrives.
  await c.waitForSelector('[data-test=slot], [data-test=no-slots]');
  if (await c.locator('[data-test=no-slots]').count()) {
    await c.locator('[data-test=pick-date]').nth(1).tap();
    await c.waitForSelector('[data-test=slot]');
  }
  await shot(c, 'phone-book');
  const chosen = c.locator('[data-test=slot]').first();
  const start = await chosen.getAttribute('data-start');
  await chosen.tap();
  const total = Number(await c.getAttribute('[data-test=total]', 'data-fen'));
  check(total > 0, `the price is shown before confirming (${total} fen)`);
  await c.tap('[data-test=confirm]');

  // Paying through the sandbox: the page waits for the confirmation on the live channel.
  await c.waitForSelector('[data-test=pay] [data-test=pay-now]');
  check((await c.textContent('[data-test=pay-by]')).includes(':'), 'the pay page shows how long the order is held');
  await shot(c, 'phone-pay');
  await c.tap('[data-test=pay-now]');
  await c.waitForSelector('[data-test=paid]', { timeout: 20_000 });
  check(true, 'the sandbox payment was confirmed live');
  await c.waitForSelector('[data-test=order] [data-test=status]', { timeout: 10_000 });
  const orderId = c.url().split('/orders/')[1].split(/[/?#]/)[0];
  report.order_id = orderId;
  report.start = start;
  // From here on, the order page must change without a reload.
  await c.evaluate(() => (window.__sameDocument = true));
  await shot(c, 'phone-order-paid');

  // The worker sees the order named for them, with a countdown, and accepts it.
  await signIn(w, worker.login, worker.password);
  await w.waitForSelector(`[data-test=named-order][data-order="${orderId}"]`);
  check((await w.textContent(`[data-test=named-order][data-order="${orderId}"] [data-test=respond-countdown]`)).includes(':'), 'the named order shows its countdown');
  await shot(w, 'phone-hall-named');
  await w.tap(`[data-test=named-order][data-order="${orderId}"] [data-test=accept]`);
  await w.waitForSelector('[data-test=job] [data-test=depart]');
  await c.waitForSelector('[data-test=order] [data-test=status][data-status=accepted]');
  check(true, "the customer's page showed the acceptance live");
  check((await w.textContent('[data-test=customer-phone]')).includes('****'), "the customer's phone is masked for the worker");

  // Departing starts the position reports; the customer sees the arrival estimate.
  await w.tap('[data-test=depart]');
  await w.waitForSelector('[data-test=job-eta]', { timeout: 20_000 });
  await c.waitForSelector('[data-test=order] [data-test=eta]', { timeout: 20_000 });
  check(true, "the arrival estimate appeared on the customer's page");
  await shot(c, 'phone-order-on-the-way');
  await w.tap('[data-test=navigate]');
  await w.waitForSelector('[data-test=map-amap]');
  const links = await Promise.all(['amap', 'baidu', 'tencent'].map((map) => w.getAttribute(`[data-test=map-${map}]`, 'href')));
  check(links[0].includes('amap.com') && links[1].includes('baidu.com') && links[2].includes('qq.com'), 'navigation opens Amap, Baidu Maps and Tencent Maps');
  await shot(w, 'phone-job-on-the-way');

  // A check-in 2 km away is refused with the distance; at the door it is accepted.
  expected.push(['/arrive', 409], ['/arrive', 422]);
  await w.tap('[data-test=arrive]');
  await w.waitForSelector('[data-test=arrive-refused]');
  const refusal = await w.textContent('[data-test=arrive-refused]');
  const metres = Number(refusal.match(/(\d+)\s*米/)?.[1]);
  check(metres > 1500 && metres < 2500, `a check-in 2 km away is refused with the distance (${refusal.trim()})`);
  await shot(w, 'phone-job-refused');
  expected.length = 0;
  await working.context.setGeolocation({ ...door, accuracy: 10 });
  await w.tap('[data-test=arrive]');
  await w.waitForSelector('[data-test=job] [data-test=start]');
  await c.waitForSelector('[data-test=order] [data-test=status][data-status=arrived]');
  await w.tap('[data-test=start]');
  await w.waitForSelector('[data-test=job] [data-test=finish]');
  await c.waitForSelector('[data-test=order] [data-test=status][data-status=in_service]');
  await w.tap('[data-test=finish]');
  await c.waitForSelector('[data-test=order] [data-test=status][data-status=completed]');
  check(await c.evaluate(() => window.__sameDocument === true), "the customer's order page followed every step without a reload");
  await shot(c, 'phone-order-completed');

  // The customer reviews; the worker sees it and replies; the customer sees the reply.
  await c.tap('[data-test=go-review]');
  await c.waitForSelector('[data-test=review-tag]');
  await c.locator('[data-test=review-tag]').first().tap();
  await c.fill('[data-test=comment] textarea', '阿姨很细心，打扫得很干净。');
  await shot(c, 'phone-review');
  await c.tap('[data-test=submit-review]');
  await c.waitForSelector('[data-test=my-review]');
  await w.goto(`${base}/app/work/reviews`);
  await w.waitForSelector('[data-test=review]');
  check((await w.textContent('[data-test=review]')).includes('打扫得很干净'), 'the worker sees the review');
  await w.fill('[data-test=reply-text] textarea', '谢谢您的认可，期待下次为您服务！');
  await w.tap('[data-test=reply-send]');
  await w.waitForSelector('[data-test=reply]');
  await shot(w, 'phone-worker-reviews');
  await c.waitForSelector('[data-test=worker-reply]', { timeout: 15_000 });
  check((await c.textContent('[data-test=worker-reply]')).includes('期待下次'), "the worker's reply shows on the customer's order");
  await shot(c, 'phone-order-reviewed');

  // The customer's other screens load cleanly.
  // Every other screen of both loads cleanly.
  await tour(c, [
    ['orders', '[data-test=order-card]'],
    ['me', '[data-test=me] [data-test=who]'],
    ['me/profile', '[data-test=profile] [data-test=name]'],
    ['me/addresses', '[data-test=addresses]'],
    ['me/addresses/new', '[data-test=address-form] [data-test=city]'],
    ['me/emergency-contact', '[data-test=emergency-contact]'],
    ['me/security', '[data-test=security] [data-test=change-password]'],
    ['me/blocked-workers', '[data-test=blocked-workers]'],
    ['me/inbox', '[data-test=notification]'],
    ['interviews', '[data-test=interviews]'],
    ['services', '[data-test=service]'],
  ]);
  await tour(w, [
    ['jobs', '[data-test=jobs]'],
    ['work/onboarding', '[data-test=onboarding] [data-test=certificate]'],
    ['work/schedule', '[data-test=schedule] [data-test=base]'],
    ['income', '[data-test=income-chart]'],
    ['me', '[data-test=me] [data-test=who]'],
    ['me/inbox', '[data-test=notification]'],
  ]);
}

/** Opens each of `screens` (a path under /app/ and what shows once it has loaded). */
async function tour(page, screens) {
  for (const [path, selector] of screens) {
    await page.goto(`${base}/app/${path}`);
    await page.waitForSelector(selector);
    await shot(page, `phone-tour-${report.screens.length}-${path.replaceAll('/', '-')}`);
  }
}

async function race() {
  const { rivals, earner, order_id: orderId, here } = config;
  const phones = [];
  for (const [index, rival] of rivals.entries()) {
    const opened = await phone(`worker ${index + 1}`, here);
    await signIn(opened.page, rival.login, rival.password);
    await opened.page.waitForSelector(`[data-test=offer][data-order="${orderId}"]`);
    phones.push(opened.page);
  }
  await shot(phones[0], 'phone-hall');
  // Both grab at once: one wins, the other is told it was taken.
  expected.push(['/grab', 409]);
  await Promise.all(phones.map((page) => page.tap(`[data-test=offer][data-order="${orderId}"] [data-test=grab]`)));
  const outcomes = await Promise.all(
    phones.map((page) =>
      Promise.race([
        page.waitForSelector('[data-test=job]').then(() => 'won'),
        page.waitForSelector(`[data-test=offer][data-order="${orderId}"] [data-test=taken]`).then(() => 'taken'),
      ]),
    ),
  );
  check(outcomes.filter((outcome) => outcome === 'won').length === 1 && outcomes.includes('taken'), `one worker won the order, the other saw it was taken (${outcomes})`);
  await shot(phones[outcomes.indexOf('taken')], 'phone-hall-taken');
  await shot(phones[outcomes.indexOf('won')], 'phone-job-grabbed');

  // The income chart draws the income route's figures; a withdrawal waits for review.
  const { page } = await phone('earner', here);
  await signIn(page, earner.login, earner.password);
  const answered = page.waitForResponse((response) => response.url().includes('/api/v1/worker/income'));
  await page.tap('[data-test=tab-income]');
  const income = await (await answered).json();
  await page.waitForSelector('[data-test=income-chart] canvas');
  await page.waitForSelector('[data-test=income-period]');
  const shown = await page.$$eval('[data-test=income-period]', (rows) =>
    rows.map((row) => [row.getAttribute('data-period'), Number(row.getAttribute('data-amount'))]),
  );
  const route = income.series.map((point) => [point.period_start, point.amount]);
  const same = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  check(route.length > 0 && same(shown, route), `the income chart's figures equal the income route's (${JSON.stringify(shown)})`);
  const canvas = await page.$eval('[data-test=income-chart] canvas', (element) => element.width * element.height);
  check(canvas > 0, 'the income chart drew');
  await shot(page, 'phone-income');
  await page.fill('[data-test=withdraw-amount] input', '20');
  await page.tap('[data-test=withdraw]');
  await page.waitForSelector('[data-test=withdrawal][data-status=requested]');
  check(true, 'the withdrawal shows as waiting for review');
  await shot(page, 'phone-income-withdrawn');
}

async function wechat() {
  const { customer, order_id: orderId, here } = config;
  const { page } = await phone('customer', here);
  await signIn(page, customer.login, customer.password);
  await page.goto(`${base}/app/orders/${orderId}/pay`);
  await page.tap('[data-test=method-wechat]');
  await page.tap('[data-test=pay-now]');
  await page.waitForSelector('[data-test=wechat-qr]');
  const drawn = await page.$eval('[data-test=wechat-qr]', (image) => image.complete && image.naturalWidth > 0);
  check(drawn, "WeChat Pay's code is drawn as a QR code");
  await shot(page, 'phone-pay-wechat');
  // The test scans it now (WeChat Pay's fake notifies the platform); the page hears it live.
  console.log('EVENT wechat-code-shown');
  await page.waitForSelector('[data-test=paid]', { timeout: 30_000 });
  check(true, 'the payment was confirmed live');
}

try {
  if (scenario === 'serve') await serve();
  else if (scenario === 'race') await race();
  else if (scenario === 'wechat') await wechat();
  else throw new Error(`unknown scenario ${scenario}`);
} catch (error) {
  problems.push(String(error?.stack ?? error));
  for (const context of browser.contexts()) {
    for (const [index, open] of context.pages().entries()) {
      await open.screenshot({ path: `${shots}/${scenario}-failure-${browser.contexts().indexOf(context)}-${index}.png` }).catch(() => undefined);
    }
  }
} finally {
  await browser.close();
}

console.log(JSON.stringify({ ...report, problems }));
process.exit(problems.length === 0 ? 0 : 1);
