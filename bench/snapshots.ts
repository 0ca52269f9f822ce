// Runs in Node: the snapshot section of `npm run bench` (issue 13). The
// size of a snapshot per guest and RAM size, of a guest idle right after
// its boot; the booted snapshots the build ships; and the time to save and
// restore a filled i386 guest: our saveSnapshot()/restoreSnapshot() beside
// v86's save_state()/restore_state(). Nothing here asserts; a row that did
// not work says why.
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import type { GuestName } from '../worker/api';
import { readSnapshot } from '../worker/snapshot';
import { ARTIFACTS } from '../test/artifacts';
import type { Server } from '../test/e2e/harness';
import type { V86Assets } from './assets';
import { errorText } from './errors';
import { OurPage } from './ours';
import { GUEST_CMDS, canaryOk, firstAnswer, sha256Of, type ShellResult } from './page-shell';
import type { RestorePhases, ShippedSnapshot, SnapshotSection, SnapshotSizeRow, SnapshotTimeRow, SnapshotVm } from './results';
import { migrationMs, restorePhases } from './snapshot-phases';
import { V86Page, v86FailureNote } from './v86';

/** What the driver (run.ts) gives the section. */
export interface SnapshotRun {
  browser: Browser;
  server: Server;
  /** v86's files, or why there are none. */
  assets: V86Assets | string;
  vms: readonly SnapshotVm[];
  /** RAM sizes of the timed runs of a filled i386 guest. */
  sizes: readonly number[];
  /** Save+restore cycles per filled guest. */
  runs: number;
  fill: number | 'most';
  /** Fills a guest's RAM as the pause section does; the MiB written. */
  fillGuest(shell: (command: string, timeoutMs: number) => Promise<ShellResult>): Promise<number>;
  say(line: string): void;
  log(line: string): void;
}

/** The guest sizes measured idle: the timed ones and 128 MiB, the size the
 * page boots by default and its booted snapshots have. */
export function idleSizes(sizes: readonly number[]): number[] {
  return [...new Set([128, ...sizes])].sort((a, b) => a - b);
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** A restore that loads the 64 KiB canary's page cache again and a shell
 * command under TCI: well under a minute even on a loaded machine. */
const CANARY_TIMEOUT_MS = 120_000;

export async function snapshotSection(r: SnapshotRun): Promise<Omit<SnapshotSection, 'run'>> {
  const sizes: SnapshotSizeRow[] = [];
  const times: SnapshotTimeRow[] = [];
  for (const ramMiB of idleSizes(r.sizes)) {
    const timed = r.sizes.includes(ramMiB);
    for (const guest of r.vms.includes('ours') ? (['arm', 'i386'] as const) : []) {
      const o = await ours(r, guest, ramMiB, timed && guest === 'i386');
      sizes.push(o.size);
      if (o.time) times.push(o.time);
    }
    if (r.vms.includes('v86')) {
      const v = await v86(r, ramMiB, timed);
      sizes.push(v.size);
      if (v.time) times.push(v.time);
    }
  }
  return { fill: r.fill, runs: r.runs, sizes, times, shipped: await shippedSnapshots() };
}

interface Rows {
  size: SnapshotSizeRow;
  time?: SnapshotTimeRow;
}

function emptyTime(vm: SnapshotVm, ramMiB: number): SnapshotTimeRow {
  return { vm, guest: 'i386', ramMiB, status: 'failed', saveMs: [], restoreMs: [], answerMs: [], fileBytes: [] };
}

/** Our guest booted from scratch at `ramMiB`: its idle snapshot, then the
 * timed runs on it filled (`timed`). */
async function ours(r: SnapshotRun, guest: GuestName, ramMiB: number, timed: boolean): Promise<Rows> {
  let page: OurPage | null = null;
  try {
    r.say(`snapshot: ours ${guest} ${ramMiB} MiB: boot`);
    page = await OurPage.open(r.browser, r.server.url, r.log);
    await page.boot({ guest, ramMiB });
    await page.waitForPrompt();
    const idle = await page.saveSnapshot();
    const info = await page.snapshotInfo(idle);
    await idle.file.dispose();
    r.say(`  idle: a ${mib(idle.bytes)} file (state ${mib(info.stateBytes)}) saved in ${Math.round(idle.ms)} ms`);
    const size: SnapshotSizeRow = { vm: 'ours', guest, ramMiB, status: 'ok', fileBytes: idle.bytes, stateBytes: info.stateBytes, saveMs: idle.ms };
    return { size, ...(timed ? { time: await oursTimed(r, page, ramMiB) } : {}) };
  } catch (e) {
    r.say(`  failed: ${errorText(e)}`);
    const note = errorText(e);
    const size: SnapshotSizeRow = { vm: 'ours', guest, ramMiB, status: 'failed', note, fileBytes: null, saveMs: null };
    return { size, ...(timed ? { time: { ...emptyTime('ours', ramMiB), note } } : {}) };
  } finally {
    await page?.close();
  }
}

/** Saves and restores our filled guest `r.runs` times; after each restore
 * the shell must answer and the canary keep its sha256. Filled as the
 * cycles finish, so a failure keeps what was measured. */
async function oursTimed(r: SnapshotRun, page: OurPage, ramMiB: number): Promise<SnapshotTimeRow> {
  const migrateMs: (number | null)[] = [];
  const phases: (RestorePhases | null)[] = [];
  const row: SnapshotTimeRow = { ...emptyTime('ours', ramMiB), migrateMs, restorePhases: phases };
  try {
    row.filledMiB = await r.fillGuest((c, t) => page.shell(c, t));
    const sum = sha256Of((await page.shell(GUEST_CMDS.makeCanary)).text);
    let canary = true;
    for (let i = 0; i < r.runs; i++) {
      const saved = await page.saveSnapshot();
      let restoredMs = NaN;
      try {
        row.saveMs.push(saved.ms);
        row.fileBytes.push(saved.bytes);
        migrateMs.push(migrationMs(await page.monitor('info migrate')));
        if (i === 0) row.stateBytes = (await page.snapshotInfo(saved)).stateBytes;
        const restored = await page.restoreSnapshot(saved);
        restoredMs = restored.ms;
        row.restoreMs.push(restored.ms);
        phases.push(restorePhases(restored.marks, restored.ms));
      } finally {
        await saved.file.dispose();
      }
      const t0 = Date.now();
      await firstAnswer(page.page, 'playground');
      row.answerMs.push(Date.now() - t0);
      canary &&= await canaryOk(sum, async () => (await page.shell(GUEST_CMDS.checkCanary, CANARY_TIMEOUT_MS)).text).catch(() => false);
      r.say(`  save ${Math.round(saved.ms)} ms (QEMU's migration ${migrateMs.at(-1) ?? '?'} ms), ${mib(saved.bytes)}; restore ${Math.round(restoredMs)} ms; answer after ${row.answerMs.at(-1)} ms; canary ${canary ? 'ok' : 'CHANGED'}`);
    }
    row.canaryOk = canary;
    row.status = 'ok';
  } catch (e) {
    row.note = errorText(e);
    r.say(`  failed: ${row.note}`);
  }
  return row;
}

/** v86 booted at `ramMiB`: its idle state, then the timed runs filled. */
async function v86(r: SnapshotRun, ramMiB: number, timed: boolean): Promise<Rows> {
  if (typeof r.assets === 'string') {
    const size: SnapshotSizeRow = { vm: 'v86', guest: 'i386', ramMiB, status: 'not run', note: r.assets, fileBytes: null, saveMs: null };
    return { size, ...(timed ? { time: { ...emptyTime('v86', ramMiB), status: 'not run', note: r.assets } } : {}) };
  }
  let v: V86Page | null = null;
  try {
    r.say(`snapshot: v86 i386 ${ramMiB} MiB: boot`);
    v = await V86Page.open(r.browser, r.assets, r.log);
    await v.boot(ramMiB);
    const idle = await v.saveState();
    const gzipBytes = await v.savedGzipBytes();
    r.say(`  idle: a ${mib(idle.bytes)} state (${mib(gzipBytes)} gzip'd) saved in ${Math.round(idle.saveMs)} ms`);
    const size: SnapshotSizeRow = { vm: 'v86', guest: 'i386', ramMiB, status: 'ok', fileBytes: idle.bytes, gzipBytes, saveMs: idle.saveMs };
    return { size, ...(timed ? { time: await v86Timed(r, v, ramMiB) } : {}) };
  } catch (e) {
    const note = v86FailureNote(e, ramMiB);
    r.say(`  failed: ${note}`);
    const size: SnapshotSizeRow = { vm: 'v86', guest: 'i386', ramMiB, status: 'failed', note, fileBytes: null, saveMs: null };
    return { size, ...(timed ? { time: { ...emptyTime('v86', ramMiB), note } } : {}) };
  } finally {
    await v?.close();
  }
}

/** v86's save_state() and restore_state() of the filled guest, as oursTimed(). */
async function v86Timed(r: SnapshotRun, v: V86Page, ramMiB: number): Promise<SnapshotTimeRow> {
  const row = emptyTime('v86', ramMiB);
  try {
    row.filledMiB = await r.fillGuest((c, t) => v.shell(c, t));
    const sum = sha256Of((await v.shell(GUEST_CMDS.makeCanary)).text);
    let canary = true;
    for (let i = 0; i < r.runs; i++) {
      const s = await v.saveRestore();
      row.saveMs.push(s.saveMs);
      row.restoreMs.push(s.restoreMs);
      row.fileBytes.push(s.bytes);
      const t0 = Date.now();
      await firstAnswer(v.page, 'benchV86');
      row.answerMs.push(Date.now() - t0);
      canary &&= await canaryOk(sum, async () => (await v.shell(GUEST_CMDS.checkCanary, CANARY_TIMEOUT_MS)).text).catch(() => false);
      r.say(`  save ${Math.round(s.saveMs)} ms, ${mib(s.bytes)}; restore ${Math.round(s.restoreMs)} ms; answer after ${row.answerMs.at(-1)} ms; canary ${canary ? 'ok' : 'CHANGED'}`);
    }
    row.canaryOk = canary;
    row.status = 'ok';
  } catch (e) {
    row.note = v86FailureNote(e, ramMiB);
    r.say(`  failed: ${row.note}`);
  }
  return row;
}

/** The booted snapshots in the manifest: the file the page fetches (read
 * and checked by the page's own reader for its header) and its gzip twin
 * in wasm/dist. */
async function shippedSnapshots(): Promise<ShippedSnapshot[]> {
  const manifest = JSON.parse(readFileSync(`${ARTIFACTS}/manifest.json`, 'utf8')) as { artifacts?: { path: string; size: number; rawSize: number }[] };
  const out: ShippedSnapshot[] = [];
  for (const a of manifest.artifacts ?? []) {
    const name = /^(snapshots\/\w+\.cprsnap)\.gz$/.exec(a.path)?.[1];
    if (!name) continue;
    const { info } = await readSnapshot(readFileSync(`${ARTIFACTS}/${name}`));
    out.push({ guest: info.guest, ramMiB: info.ramMiB, bytes: a.rawSize, gzBytes: a.size, stateBytes: info.stateBytes });
  }
  return out;
}
