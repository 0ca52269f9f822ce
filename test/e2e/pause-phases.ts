// Runs in Node: `node --import tsx test/e2e/pause-phases.ts [ramMiB...]`.
// Not a test: measures the live-update pause by phase in Chromium with the
// real QEMU and guest (docs/live-update.md), for each RAM size given
// (default 64 and 1024 MiB), N updates each (env RUNS, default 3; env
// GUEST, default arm), and
// prints a Markdown table of medians. The benchmarks (bench/) own the
// comparisons; this is the phase split that the docs quote.
import type { GuestName, LiveUpdateResult } from '../../worker/api';
import { BOOT_TIMEOUT_MS, launchBrowser, openPage, startServer, waitForState } from './harness';

const sizes = process.argv.slice(2).map(Number).filter(Boolean);
const runs = Number(process.env.RUNS ?? 3);
const route = (process.env.ROUTE ?? 'cpr-exec') as 'cpr-exec' | 'copy';
const guest = (process.env.GUEST ?? 'arm') as GuestName;
const server = await startServer();
const browser = await launchBrowser();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
try {
  for (const ramMiB of sizes.length ? sizes : [64, 1024]) {
    const page = await openPage(browser, server.url, (l) => process.env.VERBOSE && console.log(l));
    await page.evaluate(({ ramMiB, guest }) => window.playground.boot({ guest, ramMiB, build: 'v1' }), { ramMiB, guest });
    await waitForState(page, 'running', BOOT_TIMEOUT_MS);
    // Touch the guest's RAM, so that there is something to keep.
    await page.evaluate(async () => {
      const pg = window.playground;
      const from = pg.serialOffset();
      await pg.sendSerial('head -c 8388608 /dev/urandom > /tmp/fill; echo filled\n');
      await pg.waitForSerial(/^filled$/m, 120_000, { from });
    });
    const results: LiveUpdateResult[] = [];
    for (let i = 0; i < runs; i++) {
      const target = i % 2 === 0 ? 'v2' : 'v1';
      const r = await page.evaluate(({ t, route }) => window.playground.liveUpdate(t, { route }), { t: target, route });
      console.log(`${ramMiB} MiB run ${i + 1}: ${JSON.stringify(r)}`);
      results.push(r);
    }
    const p = (k: keyof LiveUpdateResult['phases']): number => median(results.map((r) => r.phases[k]));
    rows.push(
      `| ${ramMiB} MiB | ${median(results.map((r) => r.pauseMs))} | ${p('stateSaveMs')} | ${p('teardownMs')} | ${p('clearMs')} | ` +
        `${p('instantiateMs')} | ${p('qemuInitMs')} | ${p('stateLoadMs')} |`,
    );
    await page.context().close();
  }
} finally {
  await browser.close();
  await server.close();
}
console.log(`\nroute ${route}, median of ${runs} updates, ms:\n`);
console.log('| guest RAM | pause | state save | teardown | memory clear | instantiate | QEMU init | state load |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
