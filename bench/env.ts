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

export async function versions(browser: Pick<Browser, 'version'> | null): Promise<Versions> {
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

/** The machine's busy CPU seconds since boot, all cores (/proc/stat). */
function machineSeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / TICKS;
}

/** Each process's parent and own CPU ticks (utime + stime). */
function processTicks(): Map<number, { ppid: number; ticks: number }> {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      // Fields after the command name (which may hold spaces): state ppid ...;
      // utime and stime are fields 14 and 15, here 11 and 12.
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ');
      stats.set(Number(pid), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      /* ended while read */
    }
  }
  return stats;
}

/**
 * How much of the machine's CPU time went to processes other than this one
 * and its descendants (the browser and everything it runs), which the load
 * average cannot tell: it counts our own browser too. Samples every second
 * and keeps each descendant's last reading: a browser's processes are not
 * all reaped by it when it closes (they end as orphans of init, and their
 * time is lost to our cutime), so one reading at the end would count them as
 * others. Processes of ours that live under a second are missed.
 */
export class OthersCpu {
  private readonly machine0 = machineSeconds();
  private readonly t0 = Date.now();
  /** Ticks of each process of ours: at its first reading and its last. */
  private readonly ours = new Map<number, { first: number; last: number }>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor() {
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 1000);
    this.timer.unref();
  }

  private sample(atStart: boolean): void {
    const stats = processTicks();
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
    for (const pid of tree) {
      const ticks = stats.get(pid)!.ticks;
      const seen = this.ours.get(pid);
      // A process first seen after the start ran all its time in the section.
      if (seen) seen.last = ticks;
      else this.ours.set(pid, { first: atStart ? ticks : 0, last: ticks });
    }
  }

  /** Stops sampling; the others' share of all cores' time since the start. */
  stop(cores: number): number {
    clearInterval(this.timer);
    this.sample(false);
    let ours = 0;
    for (const p of this.ours.values()) ours += p.last - p.first;
    const seconds = (Date.now() - this.t0) / 1000;
    const others = machineSeconds() - this.machine0 - ours / TICKS;
    return Math.max(0, others) / (seconds * cores);
  }
}
