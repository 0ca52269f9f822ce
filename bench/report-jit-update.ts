// Runs in Node: the report's section on live update under each engine
// (bench/jit-update.ts). Pure formatting of docs/bench/results.json.
import { cell, met, ms } from './report-format';
import type { JitUpdateRow, JitUpdateSection } from './results';
import { quantile, summarize } from './stats';

/** Median of each phase over a row's updates. */
function phaseMedians(r: JitUpdateRow): string {
  const keys = Object.keys(r.phases[0] ?? {});
  return keys.map((k) => `${k.replace(/Ms$/, '')} ${ms(summarize(r.phases.map((p) => p[k] ?? 0))?.median)}`).join(', ');
}

export function jitUpdateMarkdown(s: JitUpdateSection, figures: string[][]): string[] {
  const lines = [
    '## Live update under each engine',
    '',
    s.interleaved
      ? `Each guest (128 MiB) under both engines at once, each in its own page: boot v1, warm up with \`${s.work}\`, one update not in the samples; then rounds in which, for each idle time, each page does the work, idles that long (0: the update follows the work at once) and live-updates (cpr-exec) to the other build, the two pages back to back, their order swapped every round. After each update: the time from the update resolving to the shell's answer to \`echo $((6*7))\`. The work is timed right before each update (the build has run since that page's previous update, so it started with no compiled block).`
      : `Each guest (128 MiB) and engine in a fresh page: boot v1, warm up with \`${s.work}\`, one update not in the samples, then live updates (cpr-exec) back and forth, each after the same work, either at once or after the guest idled 4 s. After each update: the time from the update resolving to the shell's answer to \`echo $((6*7))\`, and the work again (the new build starts with no compiled block).`,
    '',
    `| guest | engine | idle before the update | pause median (min–max) | phases (medians) | answer after the update | work before the first update | ${s.interleaved ? 'work before each update' : 'work right after updates'} (median) |`,
    '| --- | --- | ---: | --- | --- | --- | ---: | ---: |',
  ];
  for (const r of s.rows) {
    if (r.status !== 'ok') {
      lines.push(`| ${r.guest} | ${r.accel} | ${ms(r.settleMs)} | ${r.status}: ${r.note ?? ''} | | | | |`);
      continue;
    }
    lines.push(`| ${r.guest} | ${r.accel} | ${ms(r.settleMs)} | ${cell(r.pause)} | ${phaseMedians(r)} | ${cell(r.answer)} | ${ms(r.workBeforeMs)} | ${ms(summarize(r.workAfterMs)?.median)} |`);
  }
  lines.push(
    '',
    s.interleaved
      ? 'From one update to the next the pause varies by more than the 20 ms asked about, and the machine drifts over minutes: the medians of two rows differ by chance as much as by engine. The pairs below compare each round\'s two updates, which ran back to back.'
      : 'Right after guest work the browser is still optimizing and collecting the JIT\'s modules on its background threads, and on this two-core machine the pause shares the cores with that; after a few idle seconds that work is done.',
  );
  const find = (guest: JitUpdateRow['guest'], accel: JitUpdateRow['accel'], settleMs: number): JitUpdateRow | undefined =>
    s.rows.find((r) => r.guest === guest && r.accel === accel && r.settleMs === settleMs && r.status === 'ok');
  const pairedLines: string[] = [];
  for (const settleMs of [...new Set(s.rows.map((r) => r.settleMs))]) {
    for (const guest of ['i386', 'arm'] as const) {
      const jit = find(guest, 'jit', settleMs);
      const interp = find(guest, 'interpreter', settleMs);
      const grow = jit?.pause && interp?.pause ? jit.pause.median - interp.pause.median : null;
      const when = settleMs ? `after ${ms(settleMs)} idle` : 'right after guest work';
      figures.push([`live-update pause, JIT − interpreter (${guest}, ${when}, medians, same run)`, signed(grow), '≤ +20 ms', met(grow, (v) => v <= 20)]);
      if (!s.interleaved || !jit || !interp) continue;
      const d = pairedDiffs(jit.pausesMs, interp.pausesMs);
      if (!d) continue;
      figures.push([`live-update pause, JIT − interpreter (${guest}, ${when}, median of the ${d.n} same-round differences)`, signed(d.median), '≤ +20 ms', met(d.median, (v) => v <= 20)]);
      pairedLines.push(`| ${guest} | ${ms(settleMs)} | ${d.n} | ${signed(d.median)} | ${signed(d.q1)} to ${signed(d.q3)} | ${d.jitLonger} of ${d.n} |`);
    }
  }
  if (pairedLines.length) {
    lines.push(
      '',
      'JIT − interpreter, each round\'s two updates (same guest and idle time, back to back) as a pair:',
      '',
      '| guest | idle before the update | rounds | median difference | middle half of the differences | rounds where the JIT\'s pause was longer |',
      '| --- | ---: | ---: | ---: | --- | ---: |',
      ...pairedLines,
    );
  }
  return [...lines, ''];
}

function signed(v: number | null | undefined): string {
  return v == null ? '—' : `${v >= 0 ? '+' : ''}${ms(v)}`;
}

/** jit[i] − interp[i] over the rounds both have: median, quartiles, and
 * how many were positive. */
export function pairedDiffs(jit: readonly number[], interp: readonly number[]): { n: number; median: number; q1: number; q3: number; jitLonger: number } | null {
  const n = Math.min(jit.length, interp.length);
  if (n === 0) return null;
  const d = Array.from({ length: n }, (_, i) => jit[i]! - interp[i]!).sort((a, b) => a - b);
  return { n, median: quantile(d, 0.5), q1: quantile(d, 0.25), q3: quantile(d, 0.75), jitLonger: d.filter((v) => v > 0).length };
}
