// CPU time of threads, from /proc (Linux): a measure of the work a run
// did that another process's load on the machine does not stretch the way
// it stretches wall time. Used by bench/profile.ts and
// bench/profile-browser.ts (docs/performance.md).
import { readFileSync, readdirSync } from 'node:fs';

/** /proc's clock tick (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

/** Fields of a /proc stat line after the command name (which may hold
 * spaces) in parentheses: index 0 is field 3 (state). */
function statFields(path: string): string[] | null {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // the process or thread ended
  }
}

/** User + system CPU seconds of each thread of process `pid`, keyed "pid/tid". */
export function threadCpu(pid: number | 'self' = 'self', out = new Map<string, number>()): Map<string, number> {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const f = statFields(`/proc/${pid}/task/${tid}/stat`);
    if (f) out.set(`${pid}/${tid}`, (Number(f[11]) + Number(f[12])) / TICKS_PER_S);
  }
  return out;
}

/** The processes descended from `root` (its children, theirs, ...). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(`/proc/${name}/stat`);
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const todo = [...(children.get(root) ?? [])];
  while (todo.length) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU seconds of every thread of this process and of its descendants. */
export function treeCpu(): Map<string, number> {
  const out = threadCpu('self');
  for (const pid of descendants(process.pid)) threadCpu(pid, out);
  return out;
}

/** Per-thread CPU seconds between two snapshots, busiest first. */
export function cpuSpent(before: Map<string, number>, after: Map<string, number>): Array<{ thread: string; s: number }> {
  return [...after]
    .map(([thread, s]) => ({ thread, s: s - (before.get(thread) ?? 0) }))
    .filter((t) => t.s > 0)
    .sort((a, b) => b.s - a.s);
}

/** "CPU 12.34 s, busiest thread 9.87 s (threads: ...)" for a run's report line. */
export function describeCpu(spent: ReadonlyArray<{ s: number }>): string {
  const total = spent.reduce((a, t) => a + t.s, 0);
  return `CPU ${total.toFixed(2)} s, busiest thread ${spent[0]?.s.toFixed(2) ?? '?'} s ` +
    `(threads: ${spent.slice(0, 4).map((t) => t.s.toFixed(2)).join(' ')})`;
}
