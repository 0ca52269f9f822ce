// Runs in Node: `npm run screenshot` refreshes docs/screenshot.png with
// the playground showing a booted arm guest that answered a command and
// went through one live update (the pause chart under the controls).
import { BOOT_TIMEOUT_MS, launchBrowser, openPage, REPO, startServer, waitForState, waitForTerminal } from './harness';

const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await openPage(browser, server.url);
  await page.click('#boot');
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  // The shell's prompt comes a moment after the ready line.
  await waitForTerminal(page, 'serial', (l) => l.trimEnd().endsWith('#'), 60_000);
  await page.click('#serial');
  // One command at a time: typing ahead would echo out of order.
  for (const [cmd, answer] of [
    ['uname -a', (l: string) => l.startsWith('Linux ')],
    ['echo $((6*7))', (l: string) => l.trim() === '42'],
  ] as const) {
    await page.keyboard.type(cmd);
    await page.keyboard.press('Enter');
    await waitForTerminal(page, 'serial', answer, 60_000);
  }
  await page.evaluate(() => window.playground.liveUpdate('v2'));
  await page.locator('#pause-chart').waitFor({ state: 'visible', timeout: 60_000 });
  await page.screenshot({ path: `${REPO}docs/screenshot.png` });
  console.log('screenshot: wrote docs/screenshot.png');
} finally {
  await browser.close();
  await server.close();
}
