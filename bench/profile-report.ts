// Summarizes the CPU profiles of bench/profile.ts (docs/performance.md):
//   node --import tsx bench/profile-report.ts [--symbols FILE] [--top N] [--callees FN]... PROFILE...
// For each .cpuprofile: the time it covers and its functions by self time
// and by total (inclusive) time, as Markdown tables. Wasm functions without
// a name (a build linked without a name section shows up as
// "wasm-function[N]") are named from the symbol map that emcc's
// --emit-symbol-map writes next to the .js ("N:name" lines, N in the
// function index space, imports first, the same numbering V8 uses).
// Time is wall time sampled on each thread: a thread blocked in a futex
// wait is sampled in the function that waits, so those rows are marked.
// --callees FN splits FN's total time by the function FN called (the
// engine's wasm-to-js and js-to-wasm trampolines skipped), "(self)" for
// FN's own code: how much of the interpreter goes to dispatch, to guest
// memory accesses, to helper calls.
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function isCpuProfile(value: unknown): value is CpuProfile {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Partial<CpuProfile>;
  return Array.isArray(p.nodes) && Array.isArray(p.samples) && Array.isArray(p.timeDeltas);
}

/** Functions whose samples are a thread waiting, not computing. */
const WAITING = new Set(['(idle)', '_do_futex_wait', 'emscripten_futex_wait', '__timedwait_cp', '__timedwait']);

function loadSymbols(path: string | undefined): Map<number, string> {
  const map = new Map<number, string>();
  if (!path) return map;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) map.set(Number(line.slice(0, at)), line.slice(at + 1));
  }
  return map;
}

function frameName(frame: CallFrame, symbols: Map<number, string>): string {
  const m = /^(?:wasm-function\[|\$?func)(\d+)\]?$/.exec(frame.functionName);
  if (m) return symbols.get(Number(m[1])) ?? frame.functionName;
  if (frame.url.startsWith('wasm://')) return frame.functionName;
  if (frame.functionName.startsWith('(')) return frame.functionName;
  const file = frame.url.split('/').pop() ?? '';
  return `${frame.functionName || '(anonymous)'} [js ${file}]`;
}

interface Row {
  name: string;
  selfUs: number;
  totalUs: number;
}

function summarize(profile: CpuProfile, symbols: Map<number, string>): { rows: Row[]; totalUs: number; waitingUs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n] as const));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  // A sample's time is the delta to the next sample.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const rows = new Map<string, Row>();
  const row = (name: string): Row => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { name, selfUs: 0, totalUs: 0 }));
    return r;
  };
  let totalUs = 0;
  let waitingUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node || us === 0) continue;
    totalUs += us;
    const name = frameName(node.callFrame, symbols);
    row(name).selfUs += us;
    if (WAITING.has(name)) waitingUs += us;
    // Inclusive time: once per function on the sample's stack.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (!n) break;
      const fn = frameName(n.callFrame, symbols);
      if (seen.has(fn)) continue;
      seen.add(fn);
      row(fn).totalUs += us;
    }
  }
  return { rows: [...rows.values()], totalUs, waitingUs };
}

/** FN's total time split by its callee on each sample's stack. */
function callees(profile: CpuProfile, symbols: Map<number, string>, fn: string): Array<[string, number]> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n] as const));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i + 1] ?? 0;
    const stack: string[] = [];
    for (let at: number | undefined = profile.samples[i]; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (!n) break;
      stack.push(frameName(n.callFrame, symbols));
    }
    // Outermost first; the outermost FN frame, then its first real callee.
    stack.reverse();
    const at = stack.indexOf(fn);
    if (at < 0) continue;
    const callee = stack.slice(at + 1).find((f) => !/^(js-to-wasm|wasm-to-js)/.test(f)) ?? '(self)';
    out.set(callee, (out.get(callee) ?? 0) + us);
  }
  return [...out].sort((a, b) => b[1] - a[1]);
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-';
}

function main(): void {
  const args = process.argv.slice(2);
  let symbolsPath: string | undefined;
  let top = 25;
  const files: string[] = [];
  const split: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--symbols') symbolsPath = args[++i];
    else if (a === '--top') top = Number(args[++i]);
    else if (a === '--callees') split.push(args[++i] ?? '');
    else files.push(a);
  }
  const symbols = loadSymbols(symbolsPath);
  for (const file of files) {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!isCpuProfile(parsed)) throw new Error(`${file} is not a V8 CPU profile`);
    const { rows, totalUs, waitingUs } = summarize(parsed, symbols);
    const busyUs = totalUs - waitingUs;
    console.log(`\n### ${file}\n`);
    console.log(`${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s (${pct(busyUs, totalUs)}) not waiting.\n`);
    if (busyUs < 0.05 * totalUs) {
      console.log('(a thread that waits almost all the time: no table)');
      continue;
    }
    console.log('| # | function | self | self of busy | total |');
    console.log('| ---: | --- | ---: | ---: | ---: |');
    rows
      .filter((r) => r.selfUs > 0)
      .sort((a, b) => b.selfUs - a.selfUs)
      .slice(0, top)
      .forEach((r, i) => {
        const busy = WAITING.has(r.name) ? 'waiting' : pct(r.selfUs, busyUs);
        console.log(`| ${i + 1} | \`${r.name}\` | ${pct(r.selfUs, totalUs)} | ${busy} | ${pct(r.totalUs, totalUs)} |`);
      });
    console.log('\nBy total (inclusive) time:\n');
    console.log('| function | total | self |');
    console.log('| --- | ---: | ---: |');
    rows
      .sort((a, b) => b.totalUs - a.totalUs)
      .slice(0, top)
      .forEach((r) => console.log(`| \`${r.name}\` | ${pct(r.totalUs, totalUs)} | ${pct(r.selfUs, totalUs)} |`));
    for (const fn of split) {
      const parts = callees(parsed, symbols, fn);
      if (!parts.length) continue;
      console.log(`\nTotal time of \`${fn}\` by callee:\n`);
      console.log('| callee | share of the thread |');
      console.log('| --- | ---: |');
      for (const [name, us] of parts.slice(0, top)) console.log(`| \`${name}\` | ${pct(us, totalUs)} |`);
    }
  }
}

main();
