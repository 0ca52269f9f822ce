// Runs in Node: `npm run screenshot` refreshes docs/screenshot.png with
// the playground showing a booted arm guest that answered a command and
// went through one live update (the pause chart under the controls), and
// docs/tour/*.png: each step of each guided tour once its check passed,
// clicked through as a visitor would (docs/tour/README.md lists them).
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { BOOT_TIMEOUT_MS, launchBrowser, openPage, REPO, runTourStep, startServer, waitForState, waitForTerminal, type Server } from './harness';

/** The tours, by the button that opens each. */
const TOURS = [
  { name: 'live-update', button: '#tour-live', title: 'Tour: live update' },
  { name: 'refusal', button: '#tour-refusal', title: 'Tour: refusals' },
] as const;
const TOUR_DIR = `${REPO}docs/tour/`;

async function main(page: Page): Promise<void> {
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
}

/** Clicks a tour through, a screenshot after each step's check; returns
 * the Markdown lines that list them. */
async function tour(browser: Browser, server: Server, t: (typeof TOURS)[number]): Promise<string[]> {
  const page = await openPage(browser, server.url);
  await page.click(t.button);
  const lines = [`## ${t.title}`, ''];
  for (let step = 1; (await page.textContent('#tour-progress')) !== 'Done'; step++) {
    const title = (await page.textContent('#tour-step-title')) ?? '';
    const { result, text } = await runTourStep(page);
    if (result !== 'ok') throw new Error(`${t.name} step ${step} (${title}) failed: ${text}`);
    const file = `${t.name}-${step}.png`;
    await page.screenshot({ path: `${TOUR_DIR}${file}` });
    console.log(`screenshot: wrote docs/tour/${file} (${title})`);
    lines.push(`### ${step}. ${title}`, '', `![${t.title}, step ${step}: ${title}](${file})`, '');
    await page.click('#tour-next');
  }
  await page.close();
  return lines;
}

const server = await startServer();
const browser = await launchBrowser();
try {
  await main(await openPage(browser, server.url));
  mkdirSync(TOUR_DIR, { recursive: true });
  const lines = ['# The guided tours, step by step', '', 'Written by `npm run screenshot` (test/e2e/screenshot.ts): each step after its Run passed its check, in Chromium at the page\'s default size. Do not edit by hand.', ''];
  for (const t of TOURS) lines.push(...(await tour(browser, server, t)));
  writeFileSync(`${TOUR_DIR}README.md`, lines.join('\n'));
} finally {
  await browser.close();
  await server.close();
}
