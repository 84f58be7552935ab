// Drives Debian's Chromium through the web console (后台管理端) against a real `anjia serve`:
// an admin signs in, reads the dashboard and a report (their charts drawn, their figures the
// API's), finds an order by a Chinese term, corrects a price and cancels a paid order with a
// refund (each seen in the order's timeline), lives through an expired access token with one
// shared refresh; an analyst sees only the analytics pages and runs SQL. Every page must load
// with no console error and no failed request. Screenshots of each page (1440×900) go to the
// folder the configuration names.
//
// Usage: node console.mjs '<JSON configuration>' (see tests/api/console.rs). Prints one JSON
// line with what it checked; exits non-zero at the first failure.
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { chromiumArgs as args, executablePath, watch } from './chromium.mjs';

const config = JSON.parse(process.argv[2] ?? '{}');
const { base, admin, analyst, repriced, cancelled, pending, shots } = config;
if (!base || !admin || !analyst) {
  console.error("usage: node console.mjs '{\"base\":…,\"admin\":…,\"analyst\":…}'");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const report = { pages: [], checks: [] };
const problems = [];
// Answers the test provokes on purpose (a refused query, the injected 401s).
const expected = [];

function money(fen) {
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(fen));
  return `${sign}¥${Math.floor(abs / 100).toLocaleString('en-US')}.${String(abs % 100).padStart(2, '0')}`;
}

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
  report.checks.push(what);
}

function watchPage(page, who) {
  watch(page, who, problems, (response) => expected.some((pattern) => response.url().includes(pattern)));
}

async function shot(page, name) {
  // Charts animate for a moment after they draw; the picture is of the finished page.
  const charts = await page.$$('[data-chart]');
  await page.waitForTimeout(charts.length > 0 ? 1500 : 300);
  await page.screenshot({ path: `${shots}/${name}.png` });
  report.pages.push(name);
}

/** Whether every chart's canvas has drawn something (more than one colour). */
async function chartsDrawn(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-chart]')].map((chart) => {
      const canvas = chart.querySelector('canvas');
      if (!canvas || canvas.width === 0) return false;
      const context = canvas.getContext('2d');
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      const colours = new Set();
      for (let index = 0; index < pixels.length; index += 4 * 97) {
        colours.add(`${pixels[index]},${pixels[index + 1]},${pixels[index + 2]},${pixels[index + 3]}`);
        if (colours.size > 3) return true;
      }
      return false;
    }),
  );
}

async function waitForCharts(page, count) {
  for (let attempt = 0; attempt < 40; attempt += 1) {
    const drawn = await chartsDrawn(page);
    if (drawn.length >= count && drawn.every(Boolean)) return drawn.length;
    await page.waitForTimeout(250);
  }
  throw new Error(`the charts did not draw: ${JSON.stringify(await chartsDrawn(page))}`);
}

async function signIn(page, who) {
  await page.goto(`${base}/admin/`);
  await page.waitForSelector('[data-test=login]');
  await page.fill('[data-test=login]', who.login);
  await page.fill('[data-test=password]', who.password);
  await page.click('[data-test=submit]');
}

async function menuLabels(page) {
  return page.$$eval('[data-test=menu] .el-menu-item', (items) => items.map((item) => item.textContent.trim()));
}

async function openOrder(page, term) {
  await page.fill('[data-test=order-search]', term);
  const listed = page.waitForResponse((response) => response.url().includes('/api/v1/orders?') && response.ok());
  await page.click('[data-test=order-search-button]');
  const body = await (await listed).json();
  check(body.items.length === 1, `searching for ${term} finds its one order`);
  await page.waitForFunction(
    (text) => {
      const rows = document.querySelectorAll('[data-test=order-table] .el-table__body tr');
      return rows.length === 1 && rows[0].textContent.includes(text);
    },
    term,
  );
  await page.click('[data-test=order-table] .el-table__body tr');
  await page.waitForSelector('[data-test=timeline]');
  return body.items[0];
}

async function act(page, action, reason, fill) {
  await page.click(`[data-test=action-${action}]`);
  await page.waitForSelector('[data-test=action-form]');
  if (fill) await fill();
  await page.fill('[data-test=reason]', reason);
  await page.click('[data-test=action-submit]');
  await page.waitForSelector('[data-test=action-form]', { state: 'detached' });
}

async function timelineHas(page, texts) {
  await page.waitForFunction(
    (wanted) => {
      const timeline = document.querySelector('[data-test=timeline]')?.textContent ?? '';
      return wanted.every((text) => timeline.includes(text));
    },
    texts,
    { timeout: 15_000 },
  );
}

const browser = await chromium.launch({ executablePath, args, headless: true });
try {
  // ---- An administrator ------------------------------------------------------------------
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  const page = await context.newPage();
  watchPage(page, 'admin');

  await page.goto(`${base}/admin/`);
  await page.waitForSelector('[data-test=login]');
  check(page.url().includes('/admin/sign-in'), 'an unsigned visitor lands on the sign-in page');
  await shot(page, 'sign-in');
  const dashboardAnswer = page.waitForResponse((response) => response.url().includes('/api/v1/admin/dashboard'));
  await signIn(page, admin);
  const dashboard = await (await dashboardAnswer).json();
  await page.waitForSelector('[data-test=dashboard] [data-figure=today-orders]');
  const labels = await menuLabels(page);
  check(labels.includes('工作台') && labels.includes('订单管理') && labels.includes('数据分析'), 'the admin menu shows the admin pages');
  check(!labels.includes('SQL 控制台'), 'the SQL console is the analysts\' own');
  const charts = await waitForCharts(page, 4);
  check(charts === 4, 'the dashboard draws its four charts');
  const figure = (name) => page.textContent(`[data-figure=${name}]`);
  check((await figure('today-orders')).trim() === String(dashboard.today.orders), 'today\'s orders are the API\'s');
  check((await figure('week-gmv')).trim() === money(dashboard.week.gmv), 'the week\'s GMV is the API\'s');
  check((await figure('online')).trim() === String(dashboard.workers_online), 'workers online are the API\'s');
  check(dashboard.by_day.length === 30 && dashboard.by_day.some((day) => day.orders > 0), 'thirty days of orders, not all empty');
  await shot(page, 'dashboard');

  // Orders: find one by a Chinese term, correct its price, cancel another with a refund.
  await page.click('[data-test=menu] >> text=订单管理');
  await page.waitForSelector('[data-test=order-table] .el-table__body tr');
  await shot(page, 'orders');
  const first = await openOrder(page, repriced.term);
  check(first.order_id === repriced.order_id, 'the search found the order to reprice');
  await shot(page, 'order-drawer');
  await act(page, 'price', repriced.reason, async () => {
    await page.fill('[data-test=new-total] input', String(repriced.new_total_fen / 100));
  });
  await page.waitForFunction(
    (text) => document.querySelector('[data-test=drawer-total]')?.textContent.includes(text),
    money(repriced.new_total_fen),
  );
  await timelineHas(page, ['调整价格', repriced.reason, `→ ${money(repriced.new_total_fen)}`]);
  check(true, 'the new price and its reason show in the timeline at once');
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-test=order-drawer]', { state: 'detached' });

  // A refused correction shows the problem's Chinese detail: a paid order's price may not rise.
  await openOrder(page, repriced.term);
  expected.push(`/api/v1/admin/orders/${repriced.order_id}/price`);
  await page.click('[data-test=action-price]');
  await page.fill('[data-test=new-total] input', String(repriced.new_total_fen / 100 + 500));
  await page.fill('[data-test=reason]', '试试涨价');
  await page.click('[data-test=action-submit]');
  await page.waitForSelector('[data-test=refusal]');
  const refusal = (await page.textContent('[data-test=refusal]')).trim();
  check(/[\u4e00-\u9fff]/.test(refusal) && !refusal.includes(' / '), `a refusal shows its Chinese half: ${refusal}`);
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-test=order-drawer]', { state: 'detached' });

  await openOrder(page, cancelled.term);
  await act(page, 'cancel', cancelled.reason, () => page.click('[data-test=refund-full]'));
  await page.waitForFunction(() => document.querySelector('[data-test=drawer-status]')?.textContent.includes('已取消'));
  await timelineHas(page, ['取消订单', cancelled.reason, `退款 ${money(cancelled.refund_fen)}`]);
  check(true, 'the cancellation, its reason and the full refund show in the order');
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-test=order-drawer]', { state: 'detached' });

  // The refund shows on the money page too; a worker's withdrawal is approved there.
  await page.click('[data-test=menu] >> text=资金');
  await page.waitForSelector('[data-test=payment-order]');
  await page.fill('[data-test=payment-order]', cancelled.order_id);
  await page.click('[data-test=payment-search]');
  await page.waitForFunction(
    (text) => {
      const cells = [...document.querySelectorAll('[data-test=refunded]')];
      return cells.length === 1 && cells[0].textContent.includes(text);
    },
    money(cancelled.refund_fen),
  );
  check(true, 'the money page shows the cancelled order\'s refund');
  await shot(page, 'money');
  await page.click('.el-tabs__item >> text=提现审核');
  await page.waitForSelector('[data-test=approve-withdrawal]');
  check((await page.$$('[data-test=approve-withdrawal]')).length === 1, 'one withdrawal waits for review');
  await page.click('[data-test=approve-withdrawal]');
  await page.waitForSelector('[data-test=approve-withdrawal]', { state: 'detached' });
  check(true, 'the approved withdrawal leaves the review queue');
  await shot(page, 'money-withdrawals');

  // The audit trail says who corrected the price and why.
  await page.click('[data-test=menu] >> text=审计');
  await page.waitForSelector('[data-test=audit-table] .el-table__body tr');
  await page.waitForSelector('[data-test=verification]');
  await shot(page, 'audit');
  await page.fill('[data-test=audit] input[placeholder="事件类型（英文名）"]', 'PriceAdjusted');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('[data-test=audit-table] .el-table__body tr');
    return rows.length === 1 && rows[0].textContent.includes('调整价格');
  });
  check((await page.textContent('[data-test=audit-table] .el-table__body tr')).includes('管理员'), 'the audit row names the admin');
  await page.click('[data-test=audit-table] .el-table__body tr');
  await page.waitForSelector('[data-test=stream-drawer] [data-test=replayed]');
  await page.waitForFunction(
    (reason) => document.querySelector('[data-test=stream-drawer]')?.textContent.includes(reason),
    repriced.reason,
  );
  await page.waitForFunction(() => document.querySelector('[data-test=replayed]')?.textContent.includes('12000'));
  check(true, 'the stream shows the reason and its state after the correction');
  await page.click('[data-test=step-back]');
  await page.waitForFunction(() => document.querySelector('[data-test=replayed]')?.textContent.includes('15000'));
  check(true, 'stepping back replays the state before the correction');
  await shot(page, 'audit-stream');
  await page.keyboard.press('Escape');

  // A waiting worker is approved with a level.
  await page.click('[data-test=menu] >> text=服务人员');
  await page.waitForSelector('[data-test=worker-table] .el-table__body tr');
  await shot(page, 'workers');
  await page.fill('[data-test=worker-search]', pending.name);
  await page.click('[data-test=review-filter]');
  await page.locator('.el-select-dropdown__item:visible', { hasText: '待审核' }).click();
  await page.waitForFunction(
    (name) => {
      const rows = document.querySelectorAll('[data-test=worker-table] .el-table__body tr');
      return rows.length === 1 && rows[0].textContent.includes(name);
    },
    pending.name,
  );
  await page.click('[data-test=worker-table] .el-table__body tr');
  await page.waitForSelector('[data-test=approve-level]');
  await page.click('[data-test=approve-level]');
  await page.locator('.el-select-dropdown__item:visible', { hasText: '金牌' }).click();
  await page.click('[data-test=approve]');
  await page.waitForFunction(
    () =>
      document.querySelector('[data-test=worker-review-status]')?.textContent.includes('已通过') &&
      document.querySelector('[data-test=worker-level]')?.textContent.includes('金牌'),
  );
  check(true, 'the approved worker shows as approved at the gold level');
  await shot(page, 'worker-drawer');
  await page.keyboard.press('Escape');

  // The remaining pages load, each without a console error or a failed request.
  for (const [label, marker, name] of [
    ['派单台', '[data-test=rounds]', 'dispatch'],
    ['用户', '[data-test=customer-table] .el-table__body tr', 'customers'],
    ['评价', '[data-test=review-table] .el-table__body tr', 'reviews'],
    ['系统监控', '[data-test=jobs]', 'operations'],
  ]) {
    await page.click(`[data-test=menu] >> text=${label}`);
    await page.waitForSelector(marker);
    await shot(page, name);
  }
  await page.waitForSelector('[data-test=live-state]', { state: 'detached' });
  await page.click('[data-test=menu] >> text=派单台');
  await page.waitForFunction(() => document.querySelector('[data-test=live-state]')?.textContent.includes('实时'));
  check(true, 'the dispatch desk is connected live');
  await page.click('[data-test=menu] >> text=订单管理');
  await page.waitForSelector('[data-test=order-table] .el-table__body tr');

  // An access token that has expired is refreshed once for every request waiting on it.
  let refreshes = 0;
  let refused = 0;
  const stale = new Set();
  expected.push('/api/v1/orders?', '/api/v1/admin/order-counts');
  await page.route('**/api/v1/**', async (route) => {
    const request = route.request();
    const url = request.url();
    if (url.includes('/api/v1/sessions/refresh')) {
      refreshes += 1;
      return route.continue();
    }
    const token = request.headers().authorization ?? '';
    if (token && (stale.size === 0 || stale.has(token)) && refused < 2) {
      stale.add(token);
      refused += 1;
      return route.fulfill({
        status: 401,
        contentType: 'application/problem+json',
        body: JSON.stringify({ type: '/problems/unauthenticated', title: 'Unauthorized', status: 401, detail: '登录已过期 / the access token expired' }),
      });
    }
    return route.continue();
  });
  // The table already holds rows from before: wait for the search's own answer, which comes
  // only after the refresh and the retry, before looking at what the route saw.
  const searched = page.waitForResponse(
    (response) => response.url().includes('/api/v1/orders?') && response.status() === 200,
  );
  await page.fill('[data-test=order-search]', '');
  await page.click('[data-test=order-search-button]');
  await searched;
  await page.waitForFunction(() => document.querySelectorAll('[data-test=order-table] .el-table__body tr').length > 1);
  await page.unroute('**/api/v1/**');
  check(refused === 2 && refreshes === 1, `two requests refused at once shared one refresh (refused ${refused}, refreshed ${refreshes})`);

  // Analytics, with the warehouse loaded.
  const revenueAnswer = page.waitForResponse((response) => response.url().includes('/api/v1/reports/revenue'));
  await page.click('[data-test=menu] >> text=数据分析');
  const revenue = await (await revenueAnswer).json();
  await waitForCharts(page, 1);
  check((await figure('revenue-gmv')).trim() === money(revenue.total_gmv_fen), 'the revenue report\'s GMV is the API\'s');
  await shot(page, 'analytics');

  // The language switch: the same page in English.
  await page.click('[data-test=locale]');
  await page.waitForFunction(() => document.querySelector('[data-test=menu]')?.textContent.includes('Analytics'));
  await shot(page, 'analytics-en');
  await page.click('[data-test=locale]');

  await page.click('[data-test=sign-out]');
  await page.waitForSelector('[data-test=notice]');
  check(page.url().includes('/admin/sign-in'), 'signing out returns to the sign-in page');
  await context.close();

  // ---- An analyst --------------------------------------------------------------------------
  const analystContext = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  const analystPage = await analystContext.newPage();
  watchPage(analystPage, 'analyst');
  await signIn(analystPage, analyst);
  await analystPage.waitForSelector('[data-test=analytics]');
  const analystMenu = await menuLabels(analystPage);
  check(JSON.stringify(analystMenu) === JSON.stringify(['数据分析', 'SQL 控制台']), `the analyst sees only the analytics pages: ${analystMenu}`);
  await analystPage.goto(`${base}/admin/orders`);
  await analystPage.waitForSelector('[data-test=forbidden]');
  check(true, 'an admin page answers the analyst with its refusal');
  await analystPage.goto(`${base}/admin/sql`);
  await analystPage.waitForSelector('[data-test=sql-editor]');
  await analystPage.fill('[data-test=sql-editor]', 'SELECT 40 + 2 AS answer, \'上海\' AS city');
  await analystPage.click('[data-test=sql-run]');
  await analystPage.waitForSelector('[data-test=sql-rows] .el-table__body tr');
  const row = await analystPage.textContent('[data-test=sql-rows] .el-table__body tr');
  check(row.includes('42') && row.includes('上海'), 'a query\'s rows show in the grid');
  await shot(analystPage, 'sql');
  expected.push('/api/v1/analytics/sql');
  await analystPage.fill('[data-test=sql-editor]', 'DELETE FROM orders');
  await analystPage.click('[data-test=sql-run]');
  await analystPage.waitForSelector('[data-test=sql-problem]');
  const refusedQuery = await analystPage.textContent('[data-test=sql-problem]');
  check(refusedQuery.includes('sql-'), `a refused query shows its problem: ${refusedQuery.trim()}`);
  await analystContext.close();
} catch (error) {
  problems.push(String(error?.stack ?? error));
  // What the page showed when it failed, beside the other screenshots.
  for (const context of browser.contexts()) {
    for (const [index, open] of context.pages().entries()) {
      await open.screenshot({ path: `${shots}/failure-${index}.png` }).catch(() => undefined);
    }
  }
} finally {
  await browser.close();
}

console.log(JSON.stringify({ ...report, problems }));
process.exit(problems.length === 0 ? 0 : 1);
