// Runs in Node: the snapshot section of docs/bench/README.md and its two
// plots (time, size), from results.json. Targets are reported, never
// enforced.
import { FILL_LEAVE_MIB } from './page-shell';
import { cell, met, mib, ms, x } from './report-format';
import type { RestorePhases, SnapshotSection, SnapshotSizeRow, SnapshotTimeRow } from './results';
import { ratio, summarize } from './stats';
import { lineChart, type Series } from './svg';

/** The guest the page boots by default (BootOptions.guest, and the first
 * choice of web/index.html's guest picker). */
export const DEFAULT_GUEST = 'arm';

const TARGET_FILE_BYTES = 4 * 2 ** 20;
const TARGET_MS = 5000;
/** The issue's targets are for a 1 GiB guest. */
const TARGET_RAM_MIB = 1024;

const sizeRow = (s: SnapshotSection, vm: SnapshotSizeRow['vm'], guest: SnapshotSizeRow['guest'], ram: number): SnapshotSizeRow | undefined =>
  s.sizes.find((r) => r.vm === vm && r.guest === guest && r.ramMiB === ram);
const timeRow = (s: SnapshotSection, vm: SnapshotTimeRow['vm'], ram: number): SnapshotTimeRow | undefined => s.times.find((r) => r.vm === vm && r.ramMiB === ram);
const median = (v: readonly number[] | undefined): number | null => summarize(v ?? [])?.median ?? null;
/** A timed row's median, only when the row ran. */
const okMedian = (r: SnapshotTimeRow | undefined, f: (r: SnapshotTimeRow) => number[]): number | null => (r?.status === 'ok' ? median(f(r)) : null);

/** A row that did not run: its status here, its reason in "What did not work". */
const NOT_OK = (status: string): string => `${status} (see below)`;

function sizeCell(r: SnapshotSizeRow | undefined, second: number | null | undefined): string {
  if (!r) return '—';
  if (r.status !== 'ok') return NOT_OK(r.status);
  return `${mib(r.fileBytes)} (${mib(second)})`;
}

function timeCell(r: SnapshotTimeRow | undefined, f: (r: SnapshotTimeRow) => number[]): string {
  if (!r) return '—';
  if (r.status !== 'ok') {
    const got = f(r);
    return `${NOT_OK(r.status)}${got.length ? `; before it: ${cell(summarize(got))}` : ''}`;
  }
  return cell(summarize(f(r)));
}

export function snapshotMarkdown(s: SnapshotSection, figures: string[][]): string[] {
  const ramSizes = [...new Set(s.sizes.map((r) => r.ramMiB))].sort((a, b) => a - b);
  const timedSizes = [...new Set(s.times.map((r) => r.ramMiB))].sort((a, b) => a - b);
  const fill = s.fill === 'most' ? `all but ${FILL_LEAVE_MIB} MiB of the memory it has available (MemAvailable)` : `${s.fill} MiB`;
  const lines = [
    '## Snapshots: file size, save and restore',
    '',
    'Our snapshot is `playground.saveSnapshot()`\'s file behind a one-line JSON header (docs/api.md). Since 2026-11-29 (format 2): QEMU\'s device state from a cpr-exec migration whose exec the worker catches, and guest RAM copied out of the live-update layout\'s memfd regions; gzip\'d up to 64 MiB, raw above. Rows measured before: QEMU\'s whole migration stream, RAM included, gzip\'d (format 1). ' +
      "v86's is `save_state()`'s buffer, which v86 leaves uncompressed; its gzip size (the browser's CompressionStream, as ours compresses) is beside it. " +
      'Both skip pages that are all zeros.',
    '',
    '### Size per guest and RAM, idle right after the boot',
    '',
    'Each guest booted from scratch at that RAM size and saved at its first shell prompt. Ours: the file (and QEMU\'s stream in it, before gzip); v86: the state (and gzip\'d). Save: the time of that one save.',
    '',
    '| guest RAM | our arm: file (stream) | our i386: file (stream) | v86 i386: state (gzip) | our i386 file ÷ v86 gzip | save: our arm / our i386 / v86 |',
    '| ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const ram of ramSizes) {
    const arm = sizeRow(s, 'ours', 'arm', ram);
    const i386 = sizeRow(s, 'ours', 'i386', ram);
    const v86 = sizeRow(s, 'v86', 'i386', ram);
    const saves = [arm, i386, v86].map((r) => ms(r?.status === 'ok' ? r.saveMs : null)).join(' / ');
    const vsV86 = ratio(i386?.status === 'ok' ? i386.fileBytes : null, v86?.status === 'ok' ? v86.gzipBytes : null);
    lines.push(`| ${ram} MiB | ${sizeCell(arm, arm?.stateBytes)} | ${sizeCell(i386, i386?.stateBytes)} | ${sizeCell(v86, v86?.gzipBytes)} | ${x(vsV86)} | ${saves} |`);
  }
  lines.push(
    '',
    'The booted snapshots the build ships (`wasm/dist/snapshots`, the page\'s Start): the `.cprsnap` the page fetches (its payload is gzip already) and the `.cprsnap.gz` twin that `wasm/dist` stores and the dev server sends.',
    '',
    '| guest | RAM | .cprsnap | .cprsnap.gz | QEMU\'s stream in it |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...s.shipped.map((b) => `| ${b.guest} | ${b.ramMiB} MiB | ${mib(b.bytes)} | ${mib(b.gzBytes)} | ${mib(b.stateBytes)} |`),
    '',
    '![snapshot size vs RAM](snapshot-size.svg)',
    '',
    '### Save and restore vs guest RAM, filled',
    '',
    `The i386 guest booted from scratch at each size, then filled ${fill} with non-zero bytes as the pause section fills ("filled": the MiB each wrote), and wrote a 64 KiB random canary file. ` +
      `Then ${s.runs} save+restore cycles each, median (min–max). Ours: \`saveSnapshot()\` from the call to the Blob in the page; \`restoreSnapshot()\` of that Blob from the call to the restored VM running (the file checked whole, the running QEMU ended, a new one started that loads the state). ` +
      "v86: `save_state()` and `restore_state()` of that state, in the same emulator (no file, nothing compressed or checked). After each restore the shell's answer to `echo $((6*7))` is timed (from the restore's end) and the canary's sha256 checked.",
    '',
    '| guest RAM | filled (ours / v86) | our save | our restore | v86 save_state | v86 restore_state | our file | v86 state | save ours ÷ v86 | restore ours ÷ v86 | answer after restore (ours / v86) |',
    '| ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
  );
  for (const ram of timedSizes) {
    const o = timeRow(s, 'ours', ram);
    const v = timeRow(s, 'v86', ram);
    const filled = `${o?.filledMiB ?? '—'} / ${v?.filledMiB ?? '—'} MiB`;
    const save = ratio(okMedian(o, (r) => r.saveMs), okMedian(v, (r) => r.saveMs));
    const restore = ratio(okMedian(o, (r) => r.restoreMs), okMedian(v, (r) => r.restoreMs));
    lines.push(
      `| ${ram} MiB | ${filled} | ${timeCell(o, (r) => r.saveMs)} | ${timeCell(o, (r) => r.restoreMs)} | ${timeCell(v, (r) => r.saveMs)} | ${timeCell(v, (r) => r.restoreMs)} | ` +
        `${mib(median(o?.fileBytes))} | ${mib(median(v?.fileBytes))} | ${x(save)} | ${x(restore)} | ${ms(median(o?.answerMs))} / ${ms(median(v?.answerMs))} |`,
    );
  }
  const ran = s.times.filter((r) => r.status === 'ok');
  const bad = ran.filter((r) => r.canaryOk === false);
  lines.push('', bad.length ? `Canary sha256 changed in: ${bad.map((r) => `${r.vm} ${r.ramMiB} MiB`).join(', ')}.` : `The shell answered and the canary's sha256 was unchanged after every restore of every row that ran (${ran.length}).`);
  lines.push(...phasesMarkdown(s));
  lines.push('', '![save and restore vs RAM](snapshot.svg)', '');
  targets(s, figures);
  return lines;
}

const PHASES: { key: keyof RestorePhases; label: string }[] = [
  { key: 'checkMs', label: 'check (new worker)' },
  { key: 'stopMs', label: 'end the running QEMU' },
  { key: 'recheckMs', label: 'hand-over to the new worker' },
  { key: 'buildMs', label: 'fetch + compile the build' },
  { key: 'qemuStartMs', label: 'QEMU starts' },
  { key: 'stateLoadMs', label: 'QEMU loads the state' },
];

/** Where our save's and restore's time goes, by RAM size (medians). */
function phasesMarkdown(s: SnapshotSection): string[] {
  const rows = s.times.filter((r) => r.vm === 'ours' && (r.migrateMs?.length || r.restorePhases?.length));
  if (!rows.length) return [];
  const lines = [
    '',
    "Where our time goes (median). A save of format 1: QEMU's own migration to a file (its `info migrate` total; the VM is stopped throughout), and the rest: the file read out of QEMU's file system, gzip, sha256, the hand-over to the page (format 2 has no such split: its migration ends 'failed' by design, when the worker refuses the exec, and QEMU reports no total). " +
      "A restore, split at the page's status and progress events: a new worker started and the file checked whole (sha256, gunzip) in it while the running guest goes on, that guest's QEMU and worker ended, the new worker made the page's, the build fetched and compiled (begun during the check), QEMU started, and QEMU loading the state until the VM runs. (Rows measured before the file was checked only once: the check in the running guest's worker, and the hand-over a second check in the new one.) Since 2026-11-30 the check reads the file a slice at a time and puts its RAM straight into the restored VM's Memory, and the running guest's QEMU ends in the background once the file passed ('—': off the restore's path).",
    '',
    `| guest RAM | save: QEMU's migration | save: the rest | ${PHASES.map((p) => `restore: ${p.label}`).join(' | ')} |`,
    `| ---: | ---: | ---: | ${PHASES.map(() => '---:').join(' | ')} |`,
  ];
  for (const r of rows) {
    const migrate = (r.migrateMs ?? []).filter((v): v is number => v !== null);
    const rest = r.saveMs.flatMap((v, i) => (r.migrateMs?.[i] != null ? [v - r.migrateMs[i]!] : []));
    const phases = (r.restorePhases ?? []).filter((p): p is RestorePhases => p !== null);
    const phase = (key: keyof RestorePhases): number[] => phases.map((ph) => ph[key]).filter((v): v is number => v !== null);
    lines.push(`| ${r.ramMiB} MiB | ${ms(median(migrate))} | ${ms(median(rest))} | ${PHASES.map((p) => ms(median(phase(p.key)))).join(' | ')} |`);
  }
  return lines;
}

function targets(s: SnapshotSection, figures: string[][]): void {
  const shipped = s.shipped.find((b) => b.guest === DEFAULT_GUEST);
  figures.push([`the default guest's (${DEFAULT_GUEST}) booted snapshot as shipped (.cprsnap, gzip inside)`, mib(shipped?.bytes), '≤ 4 MiB', met(shipped?.bytes ?? null, (v) => v <= TARGET_FILE_BYTES)]);
  const saved = sizeRow(s, 'ours', DEFAULT_GUEST, 128);
  const savedBytes = saved?.status === 'ok' ? saved.fileBytes : null;
  figures.push([`the default guest's saveSnapshot() file, 128 MiB, idle after boot`, mib(savedBytes), '≤ 4 MiB', met(savedBytes, (v) => v <= TARGET_FILE_BYTES)]);
  const o = timeRow(s, 'ours', TARGET_RAM_MIB);
  const filled = o?.filledMiB !== undefined ? `${o.filledMiB} MiB filled` : 'filled';
  const save = okMedian(o, (r) => r.saveMs);
  const restore = okMedian(o, (r) => r.restoreMs);
  figures.push([`saveSnapshot() of a ${TARGET_RAM_MIB} MiB i386 guest, ${filled}`, ms(save), '≤ 5 s', met(save, (v) => v <= TARGET_MS)]);
  figures.push([`restoreSnapshot() of it`, ms(restore), '≤ 5 s', met(restore, (v) => v <= TARGET_MS)]);
}

/** Time vs RAM: our save and restore, v86's, median with min–max. */
export function snapshotTimeSvg(s: SnapshotSection): string {
  const sizes = [...new Set(s.times.map((r) => r.ramMiB))].sort((a, b) => a - b);
  const line = (vm: SnapshotTimeRow['vm'], name: string, color: string, f: (r: SnapshotTimeRow) => number[]): Series => ({
    name,
    color,
    points: s.times
      .filter((r) => r.vm === vm && r.status === 'ok')
      .flatMap((r) => {
        const sum = summarize(f(r));
        return sum ? [{ x: r.ramMiB, y: sum.median, lo: sum.min, hi: sum.max }] : [];
      }),
  });
  return lineChart(
    'Save and restore of a filled i386 guest vs guest RAM (median, min–max)',
    'guest RAM, MiB',
    [
      line('ours', 'our saveSnapshot()', '#1b7837', (r) => r.saveMs),
      line('ours', 'our restoreSnapshot()', '#a6dba0', (r) => r.restoreMs),
      line('v86', 'v86 save_state()', '#2166ac', (r) => r.saveMs),
      line('v86', 'v86 restore_state()', '#92c5de', (r) => r.restoreMs),
    ],
    sizes.length ? sizes : [64, 1024],
  );
}

/** Size vs RAM of an idle guest's snapshot, MiB. */
export function snapshotSizeSvg(s: SnapshotSection): string {
  const sizes = [...new Set(s.sizes.map((r) => r.ramMiB))].sort((a, b) => a - b);
  const line = (vm: SnapshotSizeRow['vm'], guest: SnapshotSizeRow['guest'], name: string, color: string, f: (r: SnapshotSizeRow) => number | null | undefined): Series => ({
    name,
    color,
    points: s.sizes
      .filter((r) => r.vm === vm && r.guest === guest && r.status === 'ok' && f(r) != null)
      .map((r) => {
        const y = f(r)! / 2 ** 20;
        return { x: r.ramMiB, y, lo: y, hi: y };
      }),
  });
  return lineChart(
    'Snapshot of a guest idle after boot vs guest RAM',
    'guest RAM, MiB',
    [
      line('ours', 'arm', 'our arm file', '#1b7837', (r) => r.fileBytes),
      line('ours', 'i386', 'our i386 file', '#5aae61', (r) => r.fileBytes),
      line('v86', 'i386', 'v86 state', '#2166ac', (r) => r.fileBytes),
      line('v86', 'i386', 'v86 state, gzip', '#92c5de', (r) => r.gzipBytes),
    ],
    sizes.length ? sizes : [64, 1024],
    (v) => `${+v.toPrecision(3)} MiB`,
  );
}

/** The rows that did not work, for the report's list. */
export function snapshotFailures(s: SnapshotSection): string[] {
  return [
    ...s.sizes.filter((r) => r.status !== 'ok').map((r) => `- snapshot size: ${r.vm} ${r.guest} ${r.ramMiB} MiB: ${r.status}${r.note ? ` — ${r.note}` : ''}`),
    ...s.times.filter((r) => r.status !== 'ok').map((r) => `- snapshot save/restore: ${r.vm} ${r.guest} ${r.ramMiB} MiB: ${r.status}${r.note ? ` — ${r.note}` : ''}`),
  ];
}
