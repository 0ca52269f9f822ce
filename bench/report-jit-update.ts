// Runs in Node: the report's section on live update under each engine
// (bench/jit-update.ts). Pure formatting of docs/bench/results.json.
import { cell, met, ms } from './report-format';
import type { JitUpdateRow, JitUpdateSection } from './results';
import { summarize } from './stats';

/** Median of each phase over a row's updates. */
function phaseMedians(r: JitUpdateRow): string {
  const keys = Object.keys(r.phases[0] ?? {});
  return keys.map((k) => `${k.replace(/Ms$/, '')} ${ms(summarize(r.phases.map((p) => p[k] ?? 0))?.median)}`).join(', ');
}

export function jitUpdateMarkdown(s: JitUpdateSection, figures: string[][]): string[] {
  const lines = [
    '## Live update under each engine',
    '',
    `Each guest (128 MiB) and engine in a fresh page: boot v1, warm up with \`${s.work}\`, one update not in the samples, then live updates (cpr-exec) back and forth, each after the same work, either at once or after the guest idled 4 s. After each update: the time from the update resolving to the shell's answer to \`echo $((6*7))\`, and the work again (the new build starts with no compiled block).`,
    '',
    '| guest | engine | idle before the update | pause median (min–max) | phases (medians) | answer after the update | work before the first update | work right after updates (median) |',
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
    'Right after guest work the browser is still optimizing and collecting the JIT\'s modules on its background threads, and on this two-core machine the pause shares the cores with that; after a few idle seconds that work is done.',
  );
  const find = (guest: JitUpdateRow['guest'], accel: JitUpdateRow['accel'], settleMs: number): JitUpdateRow | undefined =>
    s.rows.find((r) => r.guest === guest && r.accel === accel && r.settleMs === settleMs && r.status === 'ok');
  for (const settleMs of [...new Set(s.rows.map((r) => r.settleMs))]) {
    for (const guest of ['i386', 'arm'] as const) {
      const jit = find(guest, 'jit', settleMs)?.pause?.median;
      const interp = find(guest, 'interpreter', settleMs)?.pause?.median;
      const grow = jit != null && interp != null ? jit - interp : null;
      const when = settleMs ? `after ${ms(settleMs)} idle` : 'right after guest work';
      figures.push([`live-update pause, JIT − interpreter (${guest}, ${when}, medians, same run)`, grow == null ? '—' : `${grow >= 0 ? '+' : ''}${ms(grow)}`, '≤ +20 ms', met(grow, (v) => v <= 20)]);
    }
  }
  return [...lines, ''];
}
