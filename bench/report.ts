// Runs in Node: turns docs/bench/results.json into docs/bench/README.md and
// the SVG plots next to it. Pure formatting: every number comes from the
// results file, and targets are reported as met or not, never enforced.
import { writeFileSync } from 'node:fs';
import { FILL_LEAVE_MIB, type CpuWorkload } from './page-shell';
import type { BootRow, BootSection, CpuRow, CpuSection, JitCounts, PauseRow, PauseSection, Results, RunInfo, Served, SoakSection } from './results';
import { cell, met, mib, ms, x } from './report-format';
import { jitUpdateMarkdown } from './report-jit-update';
import { DEFAULT_GUEST, snapshotFailures, snapshotMarkdown, snapshotSizeSvg, snapshotTimeSvg } from './report-snapshot';
import { ratio, summarize } from './stats';
import { barChart, lineChart, type Bar, type Series } from './svg';

const COLORS: Record<string, string> = {
  'ours-cpr-exec': '#1b7837',
  'ours-copy': '#d6604d',
  v86: '#4393c3',
  'ours-wasm': '#1b7837',
  'ours-jit': '#5aae61',
  'native-tcg': '#888888',
  'native-tci': '#b8860b',
};
const LABEL: Record<string, string> = {
  'ours-cpr-exec': 'our live update (cpr-exec)',
  'ours-copy': 'copy route (migrate to file, fresh instance)',
  v86: 'v86 save_state + restore_state',
  'ours-wasm': 'our QEMU (TCI in wasm)',
  'ours-jit': 'our QEMU (TCI + its wasm JIT)',
  'native-tcg': 'native QEMU, TCG',
  'native-tci': 'native QEMU, TCI',
};
/** In the CPU table v86 is the emulator, not its save/restore. */
const CPU_LABEL: Record<string, string> = { ...LABEL, v86: 'v86 (x86-to-wasm JIT)' };


/** Above this share of CPU time used by other processes a section ran on
 * a loaded machine. */
const QUIET_SHARE = 0.05;

function runLine(name: string, r: RunInfo): string {
  const head = `- **${name}**: ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.seconds} s; load average ${r.loadStart.join(' / ')} at the start, ${r.loadEnd.join(' / ')} at the end`;
  // The load average counts our own browser too; older results have only it.
  if (r.othersCpuShare === undefined) {
    const loaded = r.loadStart[0]! > r.machine.cores * 0.5 || r.loadEnd[0]! > r.machine.cores * 0.5;
    return head + (loaded ? ` — above half the ${r.machine.cores} cores (this counts the benchmark's own browser too; runs since then say how much went to other processes): absolute numbers may be noisy, ratios from the same run count.` : '.');
  }
  const share = `${(r.othersCpuShare * 100).toFixed(1)}% of the machine's CPU time went to other processes`;
  return head + (r.othersCpuShare > QUIET_SHARE ? ` — **a loaded machine**: ${share}; absolute numbers are noisy, ratios from the same run count.` : `; ${share} (a quiet machine).`);
}

function pauseRow(p: PauseSection, vm: PauseRow['vm'], ram: number): PauseRow | undefined {
  return p.rows.find((r) => r.vm === vm && r.ramMiB === ram);
}
const med = (r: PauseRow | undefined): number | null => (r?.status === 'ok' ? (r.summary?.median ?? null) : null);
const why = (r: PauseRow | undefined): string => (r ? (r.status === 'ok' ? cell(r.summary) : `${r.status}${r.note ? `: ${r.note}` : ''}`) : '—');

function pauseMarkdown(p: PauseSection, figures: string[][]): string[] {
  const sizes = [...new Set(p.rows.map((r) => r.ramMiB))].sort((a, b) => a - b);
  const lines = [
    '## Live-update pause vs guest RAM',
    '',
    `Our QEMU on the ${[...new Set(p.rows.filter((r) => r.vm !== 'v86').map((r) => r.guest))].join(' and ')} guest` +
      `${p.rows.some((r) => r.vm !== 'v86' && r.guest === 'arm') ? ' (the i386 target had no v2 build for live update)' : ''}, v86 on the i386 guest (the same kernel as a bzImage, the same initramfs). ` +
      `${p.runs} runs per cell after one first run (below), median (min–max); our routes alternate v1→v2 and v2→v1. ` +
      fillText(p) +
      'Each guest also writes a 64 KiB random canary file whose sha256 is checked after the runs. The pause is what each reports: our `liveUpdate().pauseMs` (VM stopped → VM ' +
      'running on the new build), and for v86 the time of `save_state()` plus `restore_state()`, during which its guest does not run.',
    '',
    '| guest RAM | filled (ours / v86) | our live update | copy route | v86 save+restore | v86 state | copy ÷ live | v86 ÷ live |',
    '| ---: | ---: | --- | --- | --- | ---: | ---: | ---: |',
  ];
  for (const ram of sizes) {
    const live = pauseRow(p, 'ours-cpr-exec', ram);
    const copy = pauseRow(p, 'ours-copy', ram);
    const v86 = pauseRow(p, 'v86', ram);
    const state = v86?.stateBytes?.length ? summarize(v86.stateBytes)!.median : null;
    const filled = `${live?.filledMiB ?? copy?.filledMiB ?? '—'} / ${v86?.filledMiB ?? '—'} MiB`;
    lines.push(`| ${ram} MiB | ${filled} | ${why(live)} | ${why(copy)} | ${why(v86)} | ${mib(state)} | ${x(ratio(med(copy), med(live)))} | ${x(ratio(med(v86), med(live)))} |`);
  }
  if (p.rows.some((r) => r.firstMs !== undefined)) {
    lines.push('', 'The first update after boot, run before the samples above and not among them (it runs code for the first time):', '',
      '| guest RAM | our live update | copy route | v86 save+restore |', '| ---: | ---: | ---: | ---: |');
    for (const ram of sizes) lines.push(`| ${ram} MiB | ${(['ours-cpr-exec', 'ours-copy', 'v86'] as const).map((vm) => ms(pauseRow(p, vm, ram)?.firstMs)).join(' | ')} |`);
  }
  const canary = p.rows.filter((r) => r.status === 'ok');
  const bad = canary.filter((r) => r.canaryOk === false);
  lines.push('', bad.length ? `Canary sha256 changed in: ${bad.map((r) => `${r.vm} ${r.ramMiB} MiB`).join(', ')}.` : `Canary sha256 unchanged after every row that ran (${canary.length}).`);
  const withPhases = p.rows.filter((r) => r.vm === 'ours-cpr-exec' && r.phases?.length);
  if (withPhases.length) {
    const names = Object.keys(withPhases[0]!.phases![0]!);
    lines.push('', 'Our live update by phase (median ms):', '', `| guest RAM | ${names.join(' | ')} |`, `| ---: | ${names.map(() => '---:').join(' | ')} |`);
    for (const r of withPhases) lines.push(`| ${r.ramMiB} MiB | ${names.map((n) => ms(summarize(r.phases!.map((ph) => ph[n] ?? NaN).filter(Number.isFinite))?.median)).join(' | ')} |`);
  }
  lines.push('', '![pause vs RAM](pause.svg)', '');
  const lo = med(pauseRow(p, 'ours-cpr-exec', 64));
  const gib = med(pauseRow(p, 'ours-cpr-exec', 1024));
  figures.push(['pause(1 GiB) ÷ pause(64 MiB), our live update', x(ratio(gib, lo)), '≤ 1.2', met(ratio(gib, lo), (v) => v <= 1.2)]);
  // Issue 15's target: the median pause at every RAM size measured.
  const medians = p.rows.filter((r) => r.vm === 'ours-cpr-exec' && r.status === 'ok').map((r) => r.summary?.median ?? NaN).filter(Number.isFinite);
  const worst = medians.length ? Math.max(...medians) : null;
  figures.push(['live-update pause p50, the largest over the RAM sizes measured', ms(worst), '≤ 100 ms', met(worst, (v) => v <= 100)]);
  const copyR = ratio(med(pauseRow(p, 'ours-copy', 1024)), gib);
  figures.push(['copy route ÷ live update at 1 GiB', x(copyR), '≥ 20×', met(copyR, (v) => v >= 20)]);
  const v86R = ratio(med(pauseRow(p, 'v86', 1024)), gib);
  figures.push(['v86 save+restore ÷ live update at 1 GiB', x(v86R), '≥ 50×', met(v86R, (v) => v >= 50)]);
  return lines;
}

function fillText(p: PauseSection): string {
  if (p.fill === 0)
    return "The guests are idle: their RAM holds only what the kernel and the initramfs use, the rest is zero pages, which both QEMU's migration and " +
      "v86's save_state skip; a guest with more RAM in use costs the copy route and v86 more, and our live update nothing more (it copies no RAM). ";
  const what = p.fill === 'most' ? `all but ${FILL_LEAVE_MIB} MiB of the memory it has available (MemAvailable)` : `${p.fill} MiB`;
  return `Before the runs each guest fills ${what} with non-zero bytes, a file in its tmpfs ("filled": the MiB each wrote; QEMU's migration and v86's save_state both skip zero pages, so idle RAM would flatter them). ` +
    'The i386 kernel has no HIGHMEM: of 1024 MiB it uses 896 MiB, but QEMU and v86 still hold, and the copy route and v86 still scan, all of it. ';
}

function pauseSvg(p: PauseSection): string {
  const sizes = [...new Set(p.rows.map((r) => r.ramMiB))].sort((a, b) => a - b);
  const series: Series[] = (['ours-cpr-exec', 'ours-copy', 'v86'] as const).map((vm) => ({
    name: LABEL[vm]!,
    color: COLORS[vm]!,
    points: p.rows.filter((r) => r.vm === vm && r.status === 'ok' && r.summary).map((r) => ({ x: r.ramMiB, y: r.summary!.median, lo: r.summary!.min, hi: r.summary!.max })),
  }));
  return lineChart('Guest pause vs guest RAM (median, min–max)', 'guest RAM, MiB', series, sizes);
}

function bootMarkdown(b: BootSection, figures: string[][]): string[] {
  const lines = [
    '## Boot to a shell prompt, downloads, memory',
    '',
    '128 MiB of guest RAM. **Cold**: a newly launched browser with a new profile on disk (empty HTTP cache, no compiled code). **Warm**: the same page loaded a second time in that profile, after the cold page stayed 10 s on its answer (as a person reads it; meanwhile the browser writes its code cache); every VM gets the same. Before our rows, one Start in a throwaway profile warms Vite\'s dev server up (it transforms each module on its first request, ~2-3 s that only the first load after the server started would pay). ' +
      '"From page load" starts before navigation; "guest" starts at `boot()` (ours) or `new V86()` (v86). Ours runs from scratch (the kernel boots) and from the booted snapshot the build ships (the page\'s Start: `boot({ from: \'snapshot\' })`, then the fresh prompt it asks for). ' +
      'v86 boots from scratch, and starts from the state it saved at the prompt after its cold boot in the same run (`initial_state`: only the BIOSes and the state are fetched; then an Enter for a fresh prompt, as our Start does). ' +
      '"Answer": page load → the shell\'s answer to `echo $((6*7))`, typed as soon as the prompt showed (issue 13\'s target). ' +
      "Both pages get their files over loopback HTTP with `Cache-Control: no-cache` (ours from the Vite server, v86's from a server of the benchmark). Memory: PSS summed over all of the " +
      "browser's processes after the answer (one tab); `measureUserAgentSpecificMemory()` where Chromium answered within 30 s. " +
      "Rows marked **static build** load the page as a deployment serves it: `npm run build`, then `vite preview` (the page's modules bundled, the artifacts sent brotli-encoded from their precompressed twins), instead of Vite's dev server, which sends each module of the page and the worker on its own request.",
    '',
    '| VM | guest | mode | from page load: prompt | answer | guest | browser PSS | measureUserAgentSpecificMemory |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of b.rows) {
    const vm = bootLabel(r);
    if (r.status !== 'ok') lines.push(`| ${vm} | ${r.guest} | ${r.mode} | ${r.status}: ${r.note ?? ''} | | | | |`);
    else lines.push(`| ${vm} | ${r.guest} | ${r.mode} | ${ms(r.promptMs)} | ${ms(r.answerMs)} | ${ms(r.guestMs)} | ${mib(r.pssBytes)} | ${r.uaBytes != null ? mib(r.uaBytes) : (r.uaError ?? '—')} |`);
  }
  const fetched = b.rows.filter((r) => r.fetchMs !== undefined);
  if (fetched.length) lines.push('', `v86 from its saved state spent ${fetched.map((r) => `${ms(r.fetchMs)} (${r.mode})`).join(' and ')} of its page load fetching the BIOSes and the state.`);
  lines.push('', 'Downloads of a cold load (bytes as served by the dev server, which sends the committed gzip -9 files with Content-Encoding: gzip; and the same files gzip -9, as `wasm/dist` stores them; `npm run preview` sends brotli, docs/build.md):', '', '| VM | guest | requests | as served | gzip -9 | largest |', '| --- | --- | ---: | ---: | ---: | --- |');
  for (const d of b.downloads) lines.push(`| ${d.vm === 'ours' ? 'our QEMU' : 'v86'} | ${d.guest} | ${d.requests} | ${mib(d.servedBytes)} | ${mib(d.gzipBytes)} | ${d.largest.slice(0, 3).map((l) => `${l.url.split('/').pop()} ${mib(l.bytes)}`).join(', ')} |`);
  lines.push('', '![boot](boot.svg)', '');
  bootTargets(b, figures);
  return lines;
}

/** Issue 13's targets for page load → the shell's answer. */
function bootTargets(b: BootSection, figures: string[][]): void {
  const answer = (vm: BootRow['vm'], guest: BootRow['guest'], mode: BootRow['mode'], served: Served = 'dev'): number | null =>
    b.rows.find((r) => r.vm === vm && r.guest === guest && r.mode === mode && r.from === 'snapshot' && (r.served ?? 'dev') === served && r.status === 'ok')?.answerMs ?? null;
  for (const [mode, limit] of [['warm', 2000], ['cold', 3000]] as const) {
    const v = answer('ours', DEFAULT_GUEST, mode);
    figures.push([`page load → the shell answers, our Start, default guest (${DEFAULT_GUEST}), ${mode}`, ms(v), `≤ ${limit / 1000} s`, met(v, (t) => t <= limit)]);
    const built = answer('ours', DEFAULT_GUEST, mode, 'static');
    if (built !== null) figures.push([`page load → the shell answers, our Start, default guest (${DEFAULT_GUEST}), static build (vite preview), ${mode}`, ms(built), `≤ ${limit / 1000} s`, met(built, (t) => t <= limit)]);
  }
  // Issue 11's target: a full boot (no snapshot) to a shell within 10 s cold.
  const scratch = b.rows.find((r) => r.vm === 'ours' && r.guest === DEFAULT_GUEST && r.mode === 'cold' && r.from !== 'snapshot' && (r.served ?? 'dev') === 'dev' && r.status === 'ok')?.answerMs ?? null;
  figures.push([`page load → the shell answers, our boot from scratch, default guest (${DEFAULT_GUEST}), cold`, ms(scratch), '≤ 10 s', met(scratch, (t) => t <= 10_000)]);
  for (const mode of ['cold', 'warm'] as const) {
    for (const guest of [DEFAULT_GUEST, 'i386'] as const) {
      const r = ratio(answer('ours', guest, mode), answer('v86', 'i386', mode));
      const which = guest === DEFAULT_GUEST ? `default guest (${guest})` : `${guest}, the same guest as v86`;
      figures.push([`page load → the shell answers, ${mode}: our Start, ${which} ÷ v86 from its saved state (same run)`, x(r), '< 1× (faster)', met(r, (v) => v < 1)]);
    }
    const built = ratio(answer('ours', DEFAULT_GUEST, mode, 'static'), answer('v86', 'i386', mode));
    if (built !== null) figures.push([`page load → the shell answers, ${mode}: our Start, default guest (${DEFAULT_GUEST}), static build ÷ v86 from its saved state (same run)`, x(built), '< 1× (faster)', met(built, (v) => v < 1)]);
  }
}

function bootLabel(r: BootRow): string {
  if (r.vm === 'v86') return r.from === 'snapshot' ? 'v86, from its saved state' : 'v86';
  const what = r.from === 'snapshot' ? 'our QEMU, Start (booted snapshot)' : 'our QEMU, from scratch';
  return r.served === 'static' ? `${what}, **static build**` : what;
}

function bootSvg(b: BootSection): string {
  // Short labels: the chart's label column is narrow.
  const label = (r: BootRow): string => `${r.vm} ${r.from === 'snapshot' ? (r.vm === 'ours' ? 'Start' : 'from state') : 'scratch'}${r.served === 'static' ? ' static' : ''} ${r.guest} ${r.mode}`;
  const bars: Bar[] = b.rows.map((r) => ({ label: label(r), value: r.answerMs ?? 0, color: r.vm === 'ours' ? COLORS['ours-wasm']! : COLORS.v86! }));
  return barChart('Page load to the shell\'s answer to echo $((6*7)) (128 MiB)', bars);
}

/** Older results had one workload, sha256, and no workload field. */
const workloadOf = (r: CpuRow): CpuWorkload => r.workload ?? 'sha256';

function cpuMarkdown(c: CpuSection, figures: string[][]): string[] {
  const commands = c.workloads ?? { sha256: c.workload };
  const lines = [
    '## Guest CPU speed',
    '',
    `Workloads, the same in every VM (busybox in our initramfs), each timed on the host from typing the command to its end marker (the guest's own \`time\` is in the JSON); a run whose answer is wrong fails its row:`,
    '',
    ...Object.entries(commands).map(([w, cmd]) => `- **${w}**: \`${cmd}\``),
    '',
    'Native QEMU is 10.2.2 with our patch series built on this machine for i386 (TCG: `wasm/native-check.sh`; TCI: `bench/native-qemu.sh`, or the build of `wasm/native-check.sh --tci` named by `CPR_BENCH_QEMU_TCI`; both are configure\'s defaults, -O2).',
    '',
    '| VM | guest | workload | median (min–max) | ÷ native TCG | ÷ native TCI | ÷ v86 |',
    '| --- | --- | --- | --- | ---: | ---: | ---: |',
  ];
  const median = (vm: CpuRow['vm'], guest: CpuRow['guest'], w: CpuWorkload): number | null =>
    c.rows.find((r) => r.vm === vm && r.guest === guest && workloadOf(r) === w && r.status === 'ok')?.summary?.median ?? null;
  const base = (vm: CpuRow['vm'], w: CpuWorkload): number | null => median(vm, 'i386', w);
  for (const w of Object.keys(commands) as CpuWorkload[]) {
    for (const r of c.rows.filter((row) => workloadOf(row) === w)) {
      if (r.status !== 'ok') lines.push(`| ${CPU_LABEL[r.vm]} | ${r.guest} | ${w} | ${r.status}: ${r.note ?? ''} | | | |`);
      else lines.push(`| ${CPU_LABEL[r.vm]} | ${r.guest} | ${w} | ${cell(r.summary)} | ${x(ratio(r.summary?.median, base('native-tcg', w)))} | ${x(ratio(r.summary?.median, base('native-tci', w)))} | ${x(ratio(r.summary?.median, base('v86', w)))} |`);
    }
  }
  // Issue 11's target: the wasm interpreter within 2× of the same interpreter built natively.
  for (const w of Object.keys(commands) as CpuWorkload[]) {
    const r = ratio(median('ours-wasm', 'i386', w), base('native-tci', w));
    figures.push([`guest CPU, ${w}: our wasm interpreter ÷ native TCI (i386, same run)`, x(r), '≤ 2×', met(r, (v) => v <= 2)]);
  }
  // Issue 12's targets: the JIT within 2× of v86, and its tab memory.
  if (c.rows.some((r) => r.vm === 'ours-jit')) {
    for (const w of Object.keys(commands) as CpuWorkload[]) {
      const r = ratio(median('ours-jit', 'i386', w), base('v86', w));
      figures.push([`guest CPU, ${w}: our JIT ÷ v86 (i386, same run)`, x(r), '≤ 2× (moonshot < 1×)', met(r, (v) => v <= 2)]);
    }
    lines.push('', ...jitMarkdown(c, figures));
  }
  const others = [...new Set(c.rows.filter((r) => r.guest !== 'i386').map((r) => r.guest))];
  if (others.length) lines.push('', `Native QEMU and v86 run the i386 guest only (the native build is i386-softmmu), so the ${others.join(' and ')} rows' ratios compare different guest code: read them as sizes.`);
  const noJit = [...new Set(c.rows.filter((r) => r.vm === 'ours-wasm' && !c.rows.some((j) => j.vm === 'ours-jit' && j.guest === r.guest)).map((r) => r.guest))];
  if (noJit.length) lines.push('', `The ${noJit.join(' and ')} guest has no JIT row: its QEMU is a build with 64-bit host pointers (wasm64, \`-sMEMORY64=2\`), and the JIT emits code for 32-bit hosts only (docs/performance.md).`);
  lines.push('', '![cpu](cpu.svg)', '');
  return lines;
}

function compileTime(j: JitCounts | null | undefined): string {
  if (!j || j.compileUs === null) return '—';
  return `${ms(j.compileUs / 1000)} (${ms(j.modules ? j.compileUs / 1000 / j.modules : null)})`;
}

/** The JIT against the interpreter, per guest: speed-up, blocks, memory. */
function jitMarkdown(c: CpuSection, figures: string[][]): string[] {
  const lines = [
    '### The JIT against the interpreter',
    '',
    'Each engine ran in its own fresh page; `info jit` and the browser\'s PSS were read after all of its workloads (PSS counts every Chromium process of the run, so it includes the browser itself).',
    '',
    '| guest | sha256 speed-up | awk speed-up | blocks compiled | modules (alive) | wasm bytes | compile time (per module) | not compiled / refused | PSS interpreter | PSS JIT | JIT ÷ interpreter |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const first = (vm: CpuRow['vm'], guest: CpuRow['guest'], w?: CpuWorkload): CpuRow | undefined =>
    c.rows.find((r) => r.vm === vm && r.guest === guest && r.status === 'ok' && (w === undefined || workloadOf(r) === w));
  for (const guest of ['arm', 'i386'] as const) {
    const interp = first('ours-wasm', guest);
    const jit = first('ours-jit', guest);
    if (!jit) continue;
    const speedUp = (w: CpuWorkload): string => x(ratio(first('ours-wasm', guest, w)?.summary?.median, first('ours-jit', guest, w)?.summary?.median));
    const mem = ratio(jit.pssBytes, interp?.pssBytes);
    const j = jit.jit;
    lines.push(
      `| ${guest} | ${speedUp('sha256')} | ${speedUp('awk')} | ${j?.compiled ?? '—'} | ${j ? `${j.modules} (${j.modulesAlive})` : '—'} | ${j ? mib(j.wasmBytes) : '—'} | ${compileTime(j)} | ${j ? `${j.refused} / ${j.failed}` : '—'} | ${mib(interp?.pssBytes)} | ${mib(jit.pssBytes)} | ${x(mem)} |`,
    );
    if (guest === 'i386') figures.push(['tab memory after boot + workloads: JIT ÷ interpreter (i386, browser PSS)', x(mem), '≤ 1.25×', met(mem, (v) => v <= 1.25)]);
  }
  return [...lines, ''];
}

function cpuSvg(c: CpuSection): string {
  return barChart(
    'Guest CPU workloads (lower is faster)',
    c.rows.map((r) => ({ label: `${CPU_LABEL[r.vm]} ${r.guest} ${workloadOf(r)}`, value: r.summary?.median ?? 0, color: COLORS[r.vm] ?? '#666' })),
  );
}

function soakMarkdown(s: SoakSection, figures: string[][]): string[] {
  const lines = ['## Soak: consecutive live updates', ''];
  if (s.status === 'not run') return [...lines, `Not run: ${s.note}`, ''];
  const at = (update: number): number | null => s.pss.find(([i]) => i === update)?.[1] ?? null;
  const diff = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a);
  const signed = (d: number | null): string => (d === null ? '—' : `${d >= 0 ? '+' : ''}${mib(d)}`);
  const last = s.pss.at(-1);
  const total = diff(at(0), last?.[1] ?? null);
  // The first update loads the second build (its compiled code, its
  // threads): paid once, whatever the number of updates after it.
  const secondBuild = diff(at(0), at(2));
  const growth = last && last[0] > 2 ? diff(at(2), last[1]) : null;
  lines.push(
    `${s.guest} guest, ${s.ramMiB} MiB, ${s.pauses.length} of ${s.updates} live updates (alternating v1 and v2), a 64 KiB canary's sha256 checked after each: ` +
      `${s.checksumFailures} failures. Pause p50 ${ms(s.summary ? summarize(s.pauses)!.median : null)}, p95 ${ms(s.summary?.p95)}, max ${ms(s.summary?.max)}. ` +
      `Browser PSS from ${mib(at(0))} to ${mib(last?.[1])} (${signed(total)})` +
      (s.gcBeforeSamples
        ? `, each sample taken after a garbage collection in the page and its workers; of that, ${signed(secondBuild)} came with the first two updates (the second build's code and threads, paid once) and ${signed(growth)} over updates 2 → ${last?.[0] ?? '—'}.`
        : '.'),
  );
  if (s.gcBeforeSamples) {
    figures.push([`tab memory growth over live updates 2 → ${last?.[0] ?? '—'} (soak, PSS after GC)`, signed(growth), '≤ 50 MiB', met(growth, (v) => v <= 50 * 2 ** 20)]);
    figures.push([`tab memory from boot to update ${last?.[0] ?? '—'} (soak, PSS after GC; includes the second build)`, signed(total), '≤ 50 MiB', met(total, (v) => v <= 50 * 2 ** 20)]);
  }
  if (s.updateFailures?.length) lines.push('', `${s.updateFailures.length} update(s) failed; after each the page reported the guest running on the old build:`, '', ...s.updateFailures.map((f) => `- ${f}`));
  if (s.slow?.length) {
    lines.push('', 'Updates that paused over a second, by phase:', '');
    for (const u of s.slow) lines.push(`- #${u.update}: ${ms(u.pauseMs)} (${Object.entries(u.phases).map(([k, v]) => `${k} ${ms(v)}`).join(', ')})`);
  }
  if (s.status === 'failed') lines.push('', `Stopped early: ${s.note}`);
  lines.push('', '![soak](soak.svg)', '');
  return lines;
}

function soakSvg(s: SoakSection): string {
  const series: Series[] = [{ name: 'pause', color: COLORS['ours-cpr-exec']!, points: s.pauses.map((p, i) => ({ x: i + 1, y: p, lo: p, hi: p })) }];
  return lineChart(`Pause of each of ${s.pauses.length} consecutive live updates`, 'update # (log scale)', series, s.pauses.length ? [1, s.pauses.length] : [1, 2]);
}

export function writeReport(r: Results, dir: string): void {
  // The machine and versions line describes the newest section: sections
  // re-run one at a time, and the oldest may have run on another host.
  const any = [r.pause?.run, r.boot?.run, r.cpu?.run, r.soak?.run, r.snapshot?.run, r.jitUpdate?.run]
    .filter((run): run is RunInfo => run !== undefined)
    .sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : 0))[0];
  const figures: string[][] = [];
  const body: string[] = [];
  if (r.pause) body.push(...pauseMarkdown(r.pause, figures));
  if (r.boot) body.push(...bootMarkdown(r.boot, figures));
  if (r.snapshot) body.push(...snapshotMarkdown(r.snapshot, figures));
  if (r.cpu) body.push(...cpuMarkdown(r.cpu, figures));
  if (r.jitUpdate) body.push(...jitUpdateMarkdown(r.jitUpdate, figures));
  if (r.soak) body.push(...soakMarkdown(r.soak, figures));
  const runs: string[] = [];
  if (r.boot) runs.push(runLine('boot', r.boot.run));
  if (r.cpu) runs.push(runLine('cpu', r.cpu.run));
  if (r.pause) runs.push(runLine('pause', r.pause.run));
  if (r.soak) runs.push(runLine('soak', r.soak.run));
  if (r.snapshot) runs.push(runLine('snapshot', r.snapshot.run));
  if (r.jitUpdate) runs.push(runLine('jit-update', r.jitUpdate.run));
  const v = any?.versions;
  const m = any?.machine;
  const failed = [r.pause?.rows ?? [], r.boot?.rows ?? [], r.cpu?.rows ?? []]
    .flat()
    .filter((row) => row.status !== 'ok' || row.note?.includes('failed'))
    .map((row) => `- ${'vm' in row ? row.vm : ''} ${'ramMiB' in row ? `${row.ramMiB} MiB` : ''}${'mode' in row ? `${row.guest} ${row.mode}` : ''}${'wallMs' in row ? ` ${row.guest} cpu` : ''}: ${row.status}${row.note ? ` — ${row.note}` : ''}`);
  if (r.soak && r.soak.status !== 'ok') failed.push(`- soak: ${r.soak.status} — ${r.soak.note}`);
  if (r.snapshot) failed.push(...snapshotFailures(r.snapshot));
  for (const row of r.jitUpdate?.rows ?? []) if (row.status !== 'ok') failed.push(`- jit-update ${row.guest} ${row.accel}: ${row.status} — ${row.note ?? ''}`);
  const md = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (code in `bench/`) from `results.json` in this directory; do not edit by hand.',
    'Everything ran on one machine in one run per section, in headless Chromium (the harness of the end-to-end tests: Vite with COOP/COEP, Debian\'s Chromium via playwright-core).',
    'Targets are reported here, never asserted.',
    '',
    m && v
      ? `Machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, ${m.os}, Linux ${m.kernel}. Versions: QEMU ${v.qemu}, emcc ${v.emcc}, Chromium ${v.chromium}, Node ${v.node}, playwright-core ${v.playwrightCore}, v86 ${v.v86}; repository ${v.gitBranch} at ${v.gitCommit}${v.artifacts ? `; artifacts ${v.artifacts}` : ''}.`
      : '',
    '',
    ...runs,
    '',
    '## Figures against the targets',
    '',
    '| figure | value | target | |',
    '| --- | ---: | --- | --- |',
    ...(figures.length ? figures.map((f) => `| ${f.join(' | ')} |`) : ['| (pause section not run) | | | |']),
    '',
    ...body,
    '## Notes',
    '',
    ...(r.v86Assets
      ? [
          'v86 boots our own i386 guest: the bzImage that the guest step builds in the same make run as our PVH vmlinux (same tree, same .config), our initramfs, ' +
            'our kernel command line, and Debian\'s SeaBIOS (bios-256k.bin as our i386 guest ships it, vgabios-stdvga.bin from the same seabios .deb). Files:',
          '',
          ...r.v86Assets.map((a) => `- ${a}`),
          '',
        ]
      : []),
    ...(r.ramMaxMiB
      ? [
          `The largest guest RAM measured is ${r.ramMaxMiB} MiB: \`boot()\` accepts no more (RAM_MAX_MIB). The wasm32 Memory is 2 GiB; with the live-update layout's 512 MiB heap limit ` +
            'a little under 1.5 GiB could hold guest RAM, but the API refuses it, so that size was not tried.',
          '',
        ]
      : []),
    '## What did not work',
    '',
    ...(failed.length ? failed : ['Every row ran.']),
    '',
  ];
  writeFileSync(`${dir}README.md`, md.join('\n'));
  if (r.pause) writeFileSync(`${dir}pause.svg`, pauseSvg(r.pause));
  if (r.boot) writeFileSync(`${dir}boot.svg`, bootSvg(r.boot));
  if (r.snapshot) {
    writeFileSync(`${dir}snapshot.svg`, snapshotTimeSvg(r.snapshot));
    writeFileSync(`${dir}snapshot-size.svg`, snapshotSizeSvg(r.snapshot));
  }
  if (r.cpu) writeFileSync(`${dir}cpu.svg`, cpuSvg(r.cpu));
  if (r.soak && r.soak.pauses.length) writeFileSync(`${dir}soak.svg`, soakSvg(r.soak));
}
