// Experiment (not a test): why is the first live update after boot slower?
// Boots the i386 guest, runs N updates, prints each pause by phase; with
// V8 flags given as the first argument (e.g. --no-wasm-lazy-compilation).
//   node --import tsx test/exp/first-update.exp.ts [js-flags|-] [updates]
import { launchBrowser, startServer } from '../e2e/harness';
import { OurPage } from '../../bench/ours';

const jsFlags = process.argv[2] && process.argv[2] !== '-' ? process.argv[2] : '';
const updates = Number(process.argv[3] ?? 4);

const server = await startServer();
const browser = await launchBrowser(jsFlags ? [`--js-flags=${jsFlags}`] : []);
try {
  const page = await OurPage.open(browser, server.url, () => undefined);
  await page.boot({ guest: 'i386', ramMiB: 128, build: 'v1' });
  await page.waitForPrompt();
  for (let i = 0; i < updates; i++) {
    const r = await page.liveUpdate(i % 2 ? 'v1' : 'v2', 'cpr-exec');
    console.log(`${jsFlags || 'default'} #${i + 1} ${r.from} -> ${r.to}: ${r.pauseMs} ms ${JSON.stringify(r.phases)}`);
  }
} finally {
  await browser.close();
  await server.close();
}
