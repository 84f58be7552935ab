// How the browser tests start Debian's Chromium here: headless, and with nothing that reaches
// for the network on its own (this machine's closed network refuses it, many times a second).
export const executablePath = process.env.ANJIA_CHROMIUM || '/usr/bin/chromium';

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Records in `problems` every console error, page error, failed request and answer of 400 or
 * more that `provoked(response)` does not own up to: the browser tests' "nothing went wrong".
 */
export function watch(page, who, problems, provoked = () => false) {
  page.on('console', (message) => {
    // The browser's own line for an answer of 400 or more says no more than the response
    // handler below, which knows which ones the test provoked.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(`[${who}] console error: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`[${who}] page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // A request the page itself dropped (a stream or a chart library aborting on navigation)
    // is no failure of the platform; anything else is.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') {
      problems.push(`[${who}] request failed: ${request.url()} ${request.failure()?.errorText}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && !provoked(response)) {
      problems.push(`[${who}] ${response.status()} from ${response.url()}`);
    }
  });
}

/**
 * A script's record of what it checked and which screens it pictured: `check` throws at the
 * first failed condition, `shot` keeps a screenshot in `shots` once the screen has settled.
 */
export function recorder(report, shots) {
  return {
    check(condition, what) {
      if (!condition) throw new Error(`failed: ${what}`);
      report.checks.push(what);
    },
    async shot(page, name) {
      // Charts animate for a moment after they draw; the picture is of the finished screen.
      const charts = await page.$$('canvas');
      await page.waitForTimeout(charts.length > 0 ? 1500 : 300);
      await page.screenshot({ path: `${shots}/${name}.png` });
      report.screens.push(name);
    },
  };
}
