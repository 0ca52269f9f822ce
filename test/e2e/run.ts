// Runs in Node: `npm run test:e2e [FILE...]`. Node's own test runner, one
// file at a time (each starts its own server and browser), so the 2-core
// machine that may also build QEMU stays usable.
//
// Each file runs under a wall-clock cap: a
// test that waits forever (a browser that never answers, a close() that
// never returns) must end as a named failure with what was still running,
// not as a CI run that never finishes.
import { spawn, spawnSync } from 'node:child_process';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The slowest file takes ~5 min here (live-update.e2e.ts); the cap leaves
 * room for a machine three times slower. */
const FILE_CAP_MS = Number(process.env.E2E_FILE_CAP_MIN ?? 15) * 60_000;

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const ALL = ['static', 'playground', 'live-update', 'live-update-failures', 'snapshot', 'files', 'tour', 'embed', 'jit', 'firefox'];

type Outcome = 'passed' | 'failed' | 'over its cap';

interface FileRun {
  file: string;
  outcome: Outcome;
  seconds: number;
}

/** The processes under `pid`, itself first: what a hang leaves running.
 * Playwright starts the browser in a process group of its own, so the
 * file's group alone would miss it. */
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

function listProcesses(pids: number[]): string {
  const ps = spawnSync('ps', ['-o', 'pid=,etime=,time=,stat=,args=', '-p', pids.join(',')], { encoding: 'utf8' });
  return (ps.stdout ?? '').split('\n').filter(Boolean).map((l) => `    ${l.slice(0, 160)}`).join('\n');
}

function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function runFile(file: string): Promise<FileRun> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
  return new Promise((resolve) => {
    let overCap = false;
    const cap = setTimeout(() => {
      overCap = true;
      const pids = tree(child.pid ?? 0);
      console.log(`\ne2e: ${basename(file)} did not end within ${FILE_CAP_MS / 60_000} min; still running:\n${listProcesses(pids)}`);
      killAll(pids);
    }, FILE_CAP_MS);
    child.on('exit', (code) => {
      clearTimeout(cap);
      const outcome: Outcome = overCap ? 'over its cap' : code === 0 ? 'passed' : 'failed';
      resolve({ file, outcome, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

const files = process.argv.slice(2);
const targets = files.length ? files : ALL.map((name) => here(`./${name}.e2e.ts`));
const runs: FileRun[] = [];
for (const file of targets) runs.push(await runFile(file));

console.log('\ne2e summary:');
for (const r of runs) console.log(`  ${r.outcome.padEnd(12)} ${r.seconds.toFixed(0).padStart(5)} s  ${basename(r.file)}`);
process.exit(runs.every((r) => r.outcome === 'passed') ? 0 : 1);
