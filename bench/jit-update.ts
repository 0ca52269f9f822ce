// Runs in Node: live update under each engine (issue 12, item 4). The new
// build starts with no compiled block, so the questions are whether the
// JIT makes the pause longer, and how soon after the update the guest
// answers and runs at speed again. For each guest and engine, in a fresh
// page: boot v1, warm up (sha256 of 1 MiB: the JIT compiles the guest's
// hot code), then live-update back and forth; after each update, the time
// from the update resolving to the shell's answer to `echo $((6*7))`, and
// the same 1 MiB sha256 again (the new instance compiles its blocks anew).
import type { Browser } from 'playwright-core';
import type { Accel, GuestName } from '../worker/api';
import type { Server } from '../test/e2e/harness';
import { errorText } from './errors';
import { OurPage } from './ours';
import type { JitUpdateRow } from './results';
import { summarize } from './stats';

export interface JitUpdateRun {
  browser: Browser;
  server: Server;
  /** Updates measured per guest and engine (one more runs first, unmeasured). */
  runs: number;
  say(line: string): void;
  log(line: string): void;
}

/** A short, fixed piece of guest work: how fast the guest runs right now. */
export const WARM_WORK = 'head -c 1048576 /dev/zero | sha256sum';
const ENGINES: readonly Accel[] = ['interpreter', 'jit'];
const UPDATE_TIMEOUT_MS = 60_000;

export async function jitUpdateSection(r: JitUpdateRun): Promise<JitUpdateRow[]> {
  const rows: JitUpdateRow[] = [];
  for (const guest of ['i386', 'arm'] as const) {
    for (const accel of ENGINES) rows.push(await measure(r, guest, accel));
  }
  return rows;
}

async function measure(r: JitUpdateRun, guest: GuestName, accel: Accel): Promise<JitUpdateRow> {
  const row: JitUpdateRow = { guest, accel, status: 'failed', pausesMs: [], answersMs: [], workBeforeMs: null, workAfterMs: [], pause: null, answer: null };
  let ours: OurPage | null = null;
  try {
    r.say(`jit-update: ${guest} ${accel}`);
    ours = await OurPage.open(r.browser, r.server.url, r.log);
    await ours.boot({ guest, ramMiB: 128, build: 'v1', accel });
    await ours.waitForPrompt();
    await ours.shell(WARM_WORK);
    row.workBeforeMs = (await ours.shell(WARM_WORK)).ms;
    let current: 'v1' | 'v2' = 'v1';
    for (let i = 0; i <= r.runs; i++) {
      const target = current === 'v1' ? 'v2' : 'v1';
      const u = await updateAndAnswer(ours, target);
      current = target;
      const work = (await ours.shell(WARM_WORK)).ms;
      r.say(`  -> ${target}: pause ${Math.round(u.pauseMs)} ms, answer ${Math.round(u.answerMs)} ms after, 1 MiB sha256 ${Math.round(work)} ms (before: ${Math.round(row.workBeforeMs)} ms)${i === 0 ? ' (first: not in the samples)' : ''}`);
      if (i === 0) continue;
      row.pausesMs.push(u.pauseMs);
      row.answersMs.push(u.answerMs);
      row.workAfterMs.push(work);
    }
    row.status = 'ok';
  } catch (e) {
    row.note = errorText(e);
    r.say(`  failed: ${row.note}`);
  } finally {
    await ours?.close();
  }
  row.pause = summarize(row.pausesMs);
  row.answer = summarize(row.answersMs);
  return row;
}

/** One cpr-exec live update, then `echo $((6*7))` typed the moment it resolved. */
function updateAndAnswer(ours: OurPage, target: 'v1' | 'v2'): Promise<{ pauseMs: number; answerMs: number }> {
  return ours.page.evaluate(
    async ({ target, timeoutMs }) => {
      const pg = window.playground;
      const u = await pg.liveUpdate(target, { route: 'cpr-exec', timeoutMs });
      const t0 = performance.now();
      const from = pg.serialOffset();
      await pg.sendSerial('echo $((6*7))\n');
      await pg.waitForSerial(/^42\r?\n/m, timeoutMs, { from });
      return { pauseMs: u.pauseMs, answerMs: performance.now() - t0 };
    },
    { target, timeoutMs: UPDATE_TIMEOUT_MS },
  );
}
