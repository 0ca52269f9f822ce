// Experiment (not a test): the new QEMU's side of a live update on its own
// clock. Boots a guest (env GUEST, default arm) from scratch with QEMU
// trace events enabled (the `log` trace backend, timestamps from `-msg
// timestamp=on`; a live update passes the command line on), runs N
// updates, and prints each result with what QEMU logged meanwhile. Each
// traced line is a write that QEMU proxies to its runtime thread, so
// enable few events.
//   GUEST=i386 EVENTS=a,b,c node --import tsx test/exp/load-trace.exp.ts [updates]
import type { GuestName } from '../../worker/api';
import { BOOT_TIMEOUT_MS, launchBrowser, openPage, startServer, waitForState } from '../e2e/harness';

const DEFAULT_EVENTS = 'cpr_exec,cpr_state_load,migration_set_incoming_channel,qemu_loadvm_state_post_main,runstate_set,handle_qmp_command,monitor_qmp_respond';
const events = (process.env.EVENTS ?? DEFAULT_EVENTS).split(',');
const updates = Number(process.argv[2] ?? 3);
const guest = (process.env.GUEST ?? 'arm') as GuestName;

const server = await startServer();
const browser = await launchBrowser();
const lines: string[] = [];
try {
  const page = await openPage(browser, server.url, (l) => lines.push(l));
  const extraArgs = ['-msg', 'timestamp=on', ...events.flatMap((e) => ['-trace', e])];
  await page.evaluate(({ guest, extraArgs }) => window.playground.boot({ guest, ramMiB: 64, build: 'v1', from: 'scratch', extraArgs }), { guest, extraArgs });
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  await page.evaluate(() => window.playground.waitForSerial(/guest:~# /, 120_000));
  for (let i = 0; i < updates; i++) {
    const mark = lines.length;
    const target = i % 2 === 0 ? 'v2' : 'v1';
    const r = await page.evaluate((t) => window.playground.liveUpdate(t, { route: 'cpr-exec' }), target);
    await new Promise((resolve) => setTimeout(resolve, 500));
    console.log(`=== update ${i + 1} → ${target}: ${r.pauseMs} ms ${JSON.stringify(r.phases)}`);
    // QEMU's lines: "[qemu] <ISO time> <event> <args>".
    for (const l of lines.slice(mark)) {
      const m = /\[qemu\] \d{4}-\d\d-\d\dT\d\d:(\d\d:\d\d(?:\.\d+)?)Z (.*)$/.exec(l);
      if (m) console.log(`${m[1]} ${m[2]!.slice(0, 160)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
} finally {
  await browser.close();
  await server.close();
}
