// Drives two headless Chromium browsers, the customer's and the worker's, through a full
// interview call on the platform's call page, with Chromium's fake camera and microphone.
// Usage: node call.mjs BASE_URL INTERVIEW_ID CUSTOMER_ACCESS_TOKEN WORKER_ACCESS_TOKEN
// Prints one JSON line with what each side decoded; exits non-zero when the call fails.
import { chromium } from 'playwright-core';
import { chromiumArgs, executablePath } from './chromium.mjs';

const [base, interview, customerAccess, workerAccess] = process.argv.slice(2);
if (!workerAccess) {
  console.error('usage: node call.mjs BASE_URL INTERVIEW_ID CUSTOMER_ACCESS WORKER_ACCESS');
  process.exit(2);
}
const args = [
  ...chromiumArgs,
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

const browsers = [];
async function open(who, access) {
  const browser = await chromium.launch({ executablePath, args, headless: true });
  browsers.push(browser);
  const context = await browser.newContext();
  await context.grantPermissions(['camera', 'microphone'], { origin: base });
  await context.addInitScript((token) => localStorage.setItem('anjia.access_token', token), access);
  const page = await context.newPage();
  page.on('console', (message) => console.error(`[${who}] ${message.text()}`));
  page.on('pageerror', (error) => console.error(`[${who}] page error: ${error.message}`));
  await page.goto(`${base}/call#interview=${interview}`);
  return page;
}

async function decoded(page) {
  return page.evaluate(async () => {
    const stats = await window.anjiaCall.pc.getStats();
    let frames = 0;
    let audioPackets = 0;
    stats.forEach((report) => {
      if (report.type === 'inbound-rtp' && report.kind === 'video') frames += report.framesDecoded || 0;
      if (report.type === 'inbound-rtp' && report.kind === 'audio') audioPackets += report.packetsReceived || 0;
    });
    return { frames, audioPackets };
  });
}

try {
  const customer = await open('customer', customerAccess);
  const worker = await open('worker', workerAccess);
  const connected = (page) =>
    page.waitForFunction(() => window.anjiaCall && window.anjiaCall.status === 'connected', null, {
      timeout: 45000,
    });
  await Promise.all([connected(customer), connected(worker)]);
  // Video frames decoded on both sides, as the browsers' own statistics count them.
  const deadline = Date.now() + 45000;
  let seen = { customer: { frames: 0 }, worker: { frames: 0 } };
  while (Date.now() < deadline) {
    seen = { customer: await decoded(customer), worker: await decoded(worker) };
    if (seen.customer.frames >= 10 && seen.worker.frames >= 10) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const statusBefore = await customer.textContent('#status');
  // The customer's signaling connection drops mid-call: the page comes back, resuming after
  // the last message it received, and the worker's page hears no leave.
  await customer.evaluate(() => window.anjiaCall.socket.close());
  await customer.waitForFunction(
    () => window.anjiaCall.reconnects >= 1 && window.anjiaCall.socket.readyState === WebSocket.OPEN,
    null,
    { timeout: 20000 },
  );
  const workerHeardLeave = await worker.evaluate(() => window.anjiaCall.peerLeft);
  // The customer hangs up; the worker's page says the other party left.
  await customer.click('#hangup');
  await worker.waitForFunction(() => window.anjiaCall.peerLeft === true, null, { timeout: 20000 });
  const result = {
    customer: seen.customer,
    worker: seen.worker,
    customer_status: statusBefore,
    customer_reconnects: await customer.evaluate(() => window.anjiaCall.reconnects),
    worker_heard_leave_on_drop: workerHeardLeave,
    worker_status_after: await worker.textContent('#status'),
    errors: {
      customer: await customer.evaluate(() => window.anjiaCall.errors),
      worker: await worker.evaluate(() => window.anjiaCall.errors),
    },
  };
  console.log(JSON.stringify(result));
  if (seen.customer.frames < 10 || seen.worker.frames < 10) process.exitCode = 1;
} catch (error) {
  console.error(`browser call failed: ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  for (const browser of browsers) await browser.close();
}
