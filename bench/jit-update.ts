// Runs in Node: live update under each engine (issue 12, item 4). The new
// build starts with no compiled block, so the questions are whether the
// JIT makes the pause longer, and how soon after the update the guest
// answers and runs at speed again. For each guest and engine, in a fresh
// page: boot v1, warm up (sha256 of 1 MiB: the JIT compiles the guest's
// hot code), then live-update back and forth; after each update, the time
// from the update resolving to the shell's answer to `echo $((6*7))`, and
// the same 1 MiB sha256 again (the new instance compiles its blocks anew).
// The next update follows that work at once, or after the guest idled
// SETTLE_MS: right after guest work the browser still optimizes and
// collects the JIT's modules on its background threads, and the pause
// shares the machine's cores with that.
import type { Browser } from 'playwright-core';
import type { Accel, GuestName, PausePhases } from '../worker/api';
import type { Server } from '../test/e2e/harness';
import { errorText } from './errors';
import { OurPage } from './ours';
import type { JitUpdateRow } from './results';
import { summarize } from './stats';

export interface JitUpdateRun {
  browser: Browser;
  server: Server;
  /** Updates measured per guest, engine and settle time (one more runs first, unmeasured). */
  runs: number;
  say(line: string): void;
  log(line: string): void;
}

/** A short, fixed piece of guest work: how fast the guest runs right now. */
export const WARM_WORK = 'head -c 1048576 /dev/zero | sha256sum';
const ENGINES: readonly Accel[] = ['interpreter', 'jit'];
/** Idle time between the work and the next update: none, and enough for
 * the browser's background work on the JIT's modules to end. */
const SETTLE_MS = [0, 4000] as const;
const UPDATE_TIMEOUT_MS = 60_000;

export async function jitUpdateSection(r: JitUpdateRun): Promise<JitUpdateRow[]> {
  const rows: JitUpdateRow[] = [];
  for (const guest of ['i386', 'arm'] as const) {
    for (const accel of ENGINES) rows.push(...(await measure(r, guest, accel)));
  }
  return rows;
}

/** One page per guest and engine: a row per SETTLE_MS. */
async function measure(r: JitUpdateRun, guest: GuestName, accel: Accel): Promise<JitUpdateRow[]> {
  const rows: JitUpdateRow[] = SETTLE_MS.map((settleMs) => ({ guest, accel, settleMs, status: 'failed', pausesMs: [], phases: [], answersMs: [], workBeforeMs: null, workAfterMs: [], pause: null, answer: null }));
  let ours: OurPage | null = null;
  try {
    r.say(`jit-update: ${guest} ${accel}`);
    ours = await OurPage.open(r.browser, r.server.url, r.log);
    const page = ours;
    await page.boot({ guest, ramMiB: 128, build: 'v1', accel });
    await page.waitForPrompt();
    await page.shell(WARM_WORK);
    const before = (await page.shell(WARM_WORK)).ms;
    let current: 'v1' | 'v2' = 'v1';
    const update = async (): Promise<{ pauseMs: number; phases: PausePhases; answerMs: number; workMs: number }> => {
      const target = current === 'v1' ? 'v2' : 'v1';
      const u = await updateAndAnswer(page, target);
      current = target;
      return { ...u, workMs: (await page.shell(WARM_WORK)).ms };
    };
    // The page's first update also compiles the other build: not a sample.
    await update();
    for (const row of rows) {
      row.workBeforeMs = before;
      for (let i = 0; i < r.runs; i++) {
        await new Promise((resolve) => setTimeout(resolve, row.settleMs));
        const u = await update();
        r.say(`  settle ${row.settleMs} ms: pause ${Math.round(u.pauseMs)} ms, answer ${Math.round(u.answerMs)} ms after, 1 MiB sha256 ${Math.round(u.workMs)} ms (before: ${Math.round(before)} ms)`);
        row.pausesMs.push(u.pauseMs);
        row.phases.push({ ...u.phases });
        row.answersMs.push(u.answerMs);
        row.workAfterMs.push(u.workMs);
      }
      row.status = 'ok';
    }
  } catch (e) {
    const note = errorText(e);
    r.say(`  failed: ${note}`);
    for (const row of rows) if (row.status !== 'ok') row.note = note;
  } finally {
    await ours?.close();
  }
  for (const row of rows) {
    row.pause = summarize(row.pausesMs);
    row.answer = summarize(row.answersMs);
  }
  return rows;
}

/** One cpr-exec live update, then `echo $((6*7))` typed the moment it resolved. */
function updateAndAnswer(ours: OurPage, target: 'v1' | 'v2'): Promise<{ pauseMs: number; phases: PausePhases; answerMs: number }> {
  return ours.page.evaluate(
    async ({ target, timeoutMs }) => {
      const pg = window.playground;
      const u = await pg.liveUpdate(target, { route: 'cpr-exec', timeoutMs });
      const t0 = performance.now();
      const from = pg.serialOffset();
      await pg.sendSerial('echo $((6*7))\n');
      await pg.waitForSerial(/^42\r?\n/m, timeoutMs, { from });
      return { pauseMs: u.pauseMs, phases: u.phases, answerMs: performance.now() - t0 };
    },
    { target, timeoutMs: UPDATE_TIMEOUT_MS },
  );
}
