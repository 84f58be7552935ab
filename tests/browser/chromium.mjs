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
