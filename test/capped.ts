// Runs in Node: a test program under a wall-clock cap (npm run smoke,
// npm run test:e2e). A test that waits forever (a browser that never
// answers, a runtime thread spinning on a lock, a close() that never
// returns) must end as a named failure that lists what was still running,
// not as a CI run that never finishes.
import { spawn, spawnSync } from 'node:child_process';

export type Outcome = 'passed' | 'failed' | 'over its cap';

export interface CappedRun {
  label: string;
  outcome: Outcome;
  seconds: number;
}

/** Runs `node --import tsx <args>` with its output on ours; past `capMs`
 * it and everything it started are killed. */
export function runCapped(label: string, args: readonly string[], capMs: number): Promise<CappedRun> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: 'inherit' });
  return new Promise((resolve) => {
    let overCap = false;
    const cap = setTimeout(() => {
      overCap = true;
      const pids = tree(child.pid ?? 0);
      console.log(`\n${label} did not end within ${(capMs / 60_000).toFixed(1)} min; still running:\n${listProcesses(pids)}`);
      killAll(pids);
    }, capMs);
    child.on('exit', (code) => {
      clearTimeout(cap);
      const outcome: Outcome = overCap ? 'over its cap' : code === 0 ? 'passed' : 'failed';
      resolve({ label, outcome, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

/** One line per run, and whether all passed. */
export function summarize(title: string, runs: readonly CappedRun[]): boolean {
  console.log(`\n${title}:`);
  for (const r of runs) console.log(`  ${r.outcome.padEnd(12)} ${r.seconds.toFixed(0).padStart(5)} s  ${r.label}`);
  return runs.every((r) => r.outcome === 'passed');
}

/** The processes under `pid`, itself first. Playwright starts the browser
 * in a process group of its own, so a process group would miss it. */
function tree(pid: number): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' });
  const children = new Map<number, number[]>();
  for (const line of (ps.stdout ?? '').split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    if (p && pp !== undefined) children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const out: number[] = [];
  const visit = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return out;
}

function listProcesses(pids: readonly number[]): string {
  const ps = spawnSync('ps', ['-o', 'pid=,etime=,time=,stat=,args=', '-p', pids.join(',')], { encoding: 'utf8' });
  return (ps.stdout ?? '').split('\n').filter(Boolean).map((l) => `    ${l.slice(0, 160)}`).join('\n');
}

function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
