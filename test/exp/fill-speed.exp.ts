// Experiment (not a test): how fast can a guest make its RAM non-zero?
// The pause benchmark fills guest RAM before measuring; this times the
// candidate ways in our i386 guest.
//   node --import tsx test/exp/fill-speed.exp.ts [guest] [ramMiB]
import { launchBrowser, startServer } from '../e2e/harness';
import { OurPage } from '../../bench/ours';
import type { GuestName } from '../../worker/api';

const guest = (process.argv[2] ?? 'i386') as GuestName;
const ramMiB = Number(process.argv[3] ?? 256);
const cmds = (process.argv[4] ?? '').split(';;').filter(Boolean);

const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await OurPage.open(browser, server.url, (l) => process.env.VERBOSE && console.log(l));
  await page.boot({ guest, ramMiB, build: 'v1' });
  await page.waitForPrompt();
  for (const c of cmds) {
    const r = await page.shell(c, 1_800_000);
    console.log(`${Math.round(r.ms)} ms status ${r.status}: ${c}\n${r.text.split('\n').slice(1, -1).join('\n').slice(-600)}`);
  }
} finally {
  await browser.close();
  await server.close();
}
