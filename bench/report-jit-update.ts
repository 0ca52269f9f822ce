// Runs in Node: the report's section on live update under each engine
// (bench/jit-update.ts). Pure formatting of docs/bench/results.json.
import { cell, met, ms } from './report-format';
import type { JitUpdateRow, JitUpdateSection } from './results';
import { summarize } from './stats';

export function jitUpdateMarkdown(s: JitUpdateSection, figures: string[][]): string[] {
  const lines = [
    '## Live update under each engine',
    '',
    `Each guest (128 MiB) and engine in a fresh page: boot v1, warm up with \`${s.work}\`, then live updates (cpr-exec) back and forth; the first update is not in the samples. After each update: the time from the update resolving to the shell's answer to \`echo $((6*7))\`, and the same work again (the new build starts with no compiled block).`,
    '',
    '| guest | engine | pause median (min–max) | answer after the update | work before the first update | work right after updates (median) |',
    '| --- | --- | --- | --- | ---: | ---: |',
  ];
  for (const r of s.rows) {
    if (r.status !== 'ok') {
      lines.push(`| ${r.guest} | ${r.accel} | ${r.status}: ${r.note ?? ''} | | | |`);
      continue;
    }
    lines.push(`| ${r.guest} | ${r.accel} | ${cell(r.pause)} | ${cell(r.answer)} | ${ms(r.workBeforeMs)} | ${ms(summarize(r.workAfterMs)?.median)} |`);
  }
  const find = (guest: JitUpdateRow['guest'], accel: JitUpdateRow['accel']): JitUpdateRow | undefined => s.rows.find((r) => r.guest === guest && r.accel === accel && r.status === 'ok');
  for (const guest of ['i386', 'arm'] as const) {
    const jit = find(guest, 'jit')?.pause?.median;
    const interp = find(guest, 'interpreter')?.pause?.median;
    const grow = jit != null && interp != null ? jit - interp : null;
    figures.push([`live-update pause with the JIT − with the interpreter (${guest}, medians, same run)`, grow == null ? '—' : `${grow >= 0 ? '+' : ''}${ms(grow)}`, '≤ +20 ms', met(grow, (v) => v <= 20)]);
  }
  return [...lines, ''];
}
