// Experiment (not a test): does each live update leave a thread behind?
// Boots the arm guest in Chromium, runs N live updates, and after each
// prints the thread count and PSS of every Chromium renderer process.
// Run it alone (no other Chromium on the machine):
//   node --import tsx test/exp/update-threads.exp.ts [updates]
import { readFileSync, readdirSync } from 'node:fs';
import { BOOT_TIMEOUT_MS, launchBrowser, openPage, startServer, waitForState } from '../e2e/harness';

const updates = Number(process.argv[2] ?? 6);

function renderers(): string {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer')) continue;
      const threads = /Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      const pss = /Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1];
      // Thread names (Chromium names worker threads "DedicatedWorker"...).
      const names = new Map<string, number>();
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        const n = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
        names.set(n, (names.get(n) ?? 0) + 1);
      }
      const kinds = [...names].filter(([, c]) => c > 1).map(([n, c]) => `${n}×${c}`).join(' ');
      out.push(`${pid}: ${threads} threads (${kinds}), ${Math.round(Number(pss) / 1024)} MiB`);
    } catch {
      /* gone */
    }
  }
  return out.join(' | ');
}

const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await openPage(browser, server.url, (l) => process.env.VERBOSE && console.log(l));
  await page.evaluate(() => window.playground.boot({ guest: 'arm', ramMiB: 128, build: 'v1' }));
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  await new Promise((r) => setTimeout(r, 3000));
  console.log(`booted: ${renderers()}`);
  for (let i = 0; i < updates; i++) {
    const r = await page.evaluate((t) => window.playground.liveUpdate(t), i % 2 === 0 ? 'v2' : 'v1');
    await new Promise((res) => setTimeout(res, 3000));
    console.log(`update ${i + 1} (${r.pauseMs} ms): ${renderers()}`);
  }
} finally {
  await browser.close();
  await server.close();
}
