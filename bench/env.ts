// Runs in Node: what the numbers were measured on (machine, load, versions).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import type { Browser } from 'playwright-core';
import { REPO } from '../test/e2e/harness';
import { ARTIFACTS } from '../test/artifacts';

export interface Machine {
  cpu: string;
  cores: number;
  memGiB: number;
  kernel: string;
  os: string;
}

export interface Versions {
  node: string;
  chromium: string;
  playwrightCore: string;
  v86: string;
  qemu: string;
  emcc: string;
  gitCommit: string;
  gitBranch: string;
  /** The unpacked artifacts the page served, its QEMU builds and patches. */
  artifacts: string;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function pkgVersion(name: string): string {
  const file = `${REPO}node_modules/${name}/package.json`;
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : 'not installed';
}

export function machine(): Machine {
  const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: sh('uname', ['-r']),
    os: /^PRETTY_NAME="?([^"\n]*)/m.exec(osRelease)?.[1] ?? 'unknown',
  };
}

export async function versions(browser: Browser | null): Promise<Versions> {
  const manifest = JSON.parse(readFileSync(`${ARTIFACTS}/manifest.json`, 'utf8')) as {
    qemu: { version: string; debianSource: string; builds?: string[] };
    toolchain: { emcc: string };
    patchSeries?: { patches: string[] };
  };
  return {
    node: process.version,
    chromium: browser ? browser.version() : 'not started',
    playwrightCore: pkgVersion('playwright-core'),
    v86: pkgVersion('v86'),
    qemu: `${manifest.qemu.version} (${manifest.qemu.debianSource})`,
    emcc: manifest.toolchain.emcc,
    gitCommit: sh('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']),
    gitBranch: sh('git', ['-C', REPO, 'branch', '--show-current']),
    artifacts: `${ARTIFACTS} (builds ${(manifest.qemu.builds ?? []).join(', ')}; ${manifest.patchSeries?.patches.length ?? '?'} patches)`,
  };
}

/** 1, 5 and 15 minute load averages, and the processes using most CPU right
 * now (other builds on a shared machine make every number here noisy). */
export function load(): { loadavg: number[]; busiest: string[] } {
  const top = sh('ps', ['-eo', 'pcpu,comm', '--sort=-pcpu', '--no-headers'])
    .split('\n')
    .slice(0, 5)
    .map((l) => l.trim());
  return { loadavg: loadavg().map((x) => Math.round(x * 100) / 100), busiest: top };
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** CPU seconds since boot: the whole machine's busy time (/proc/stat), and
 * this process tree's: this process, its live descendants, and the ended
 * ones through their parents' cutime/cstime. Two readings tell how much
 * of a section's CPU went to other processes (builds, tests), which the
 * load average cannot: it counts our own browser too. */
export function cpuSeconds(): { machine: number; ours: number } {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const machine = (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / TICKS;
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      // Fields after the command name (which may hold spaces): state ppid ...
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ');
      // utime stime cutime cstime are fields 14-17, here 11-14.
      stats.set(Number(pid), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      /* ended while read */
    }
  }
  const tree = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, st] of stats) {
      if (!tree.has(pid) && tree.has(st.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  let ticks = 0;
  for (const pid of tree) ticks += stats.get(pid)?.ticks ?? 0;
  return { machine, ours: ticks / TICKS };
}
