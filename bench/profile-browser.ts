// Times the CPU workload in headless Chromium, the way bench/profile.ts
// does in Node (docs/performance.md):
//   [CPR_ARTIFACTS=DIR] node --import tsx bench/profile-browser.ts [--guest i386] [--mib N] [--runs N]
// Serves the artifact tree (wasm/out, or CPR_ARTIFACTS: e.g. a copy with
// one relinked .wasm swapped in) with the playground's dev server, boots
// the guest from scratch in a new page, then runs `time sh -c "head -c N
// /dev/zero | sha256sum"` --runs times. Each run reports the host wall
// time, the guest's own `time`, and the CPU time of every thread of the
// browser's processes over the run (the busiest one is QEMU's vCPU thread).
import type { GuestName } from '../worker/api';
import { launchBrowser, openPage, startServer } from '../test/e2e/harness';
import { ARTIFACTS } from '../test/artifacts';
import { cpuSpent, describeCpu, treeCpu } from './cpu-threads';
import { guestRealSeconds, shell } from './page-shell';

function parseArgs(argv: readonly string[]): { guest: GuestName; mib: number; runs: number } {
  const o: { guest: GuestName; mib: number; runs: number } = { guest: 'i386', mib: 2, runs: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${String(a)} needs a value`);
    if (a === '--guest') {
      if (v !== 'arm' && v !== 'i386') throw new Error(`unknown guest ${v}`);
      o.guest = v;
    } else if (a === '--mib') o.mib = Number(v);
    else if (a === '--runs') o.runs = Number(v);
    else throw new Error(`unknown option ${String(a)}`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await openPage(browser, server.url);
  const t0 = Date.now();
  await page.evaluate(async (guest) => {
    await window.playground.boot({ guest, from: 'scratch', bootTimeoutMs: 600_000 });
    await window.playground.waitForSerial(/guest:~# /, 120_000);
  }, opts.guest);
  console.log(`booted ${opts.guest} from ${ARTIFACTS} in Chromium in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 2000));
  for (let run = 1; run <= opts.runs; run++) {
    const cpu0 = treeCpu();
    const r = await shell(page, 'playground', `time sh -c "head -c ${opts.mib * 1024 * 1024} /dev/zero | sha256sum"`, 1_800_000);
    const spent = cpuSpent(cpu0, treeCpu());
    console.log(`run ${run}: ${opts.mib} MiB in ${(r.ms / 1000).toFixed(2)} s host wall, guest real ${guestRealSeconds(r.text) ?? '?'} s; ` +
      `${describeCpu(spent)}`);
  }
} finally {
  await browser.close();
  await server.close();
}
