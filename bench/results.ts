// Runs in Node: the shape of docs/bench/results.json. Each section is
// written by one part of the benchmark; a partial run (`--only`) keeps the
// sections it did not run from the previous results file.
import type { Machine, Versions } from './env';
import type { Summary } from './stats';

/** 'ok', or why a row has no numbers. Rows that did not work stay in the
 * results: what did not work is part of the report. */
export type RowStatus = 'ok' | 'failed' | 'not run';

export interface RunInfo {
  date: string;
  machine: Machine;
  versions: Versions;
  /** Load averages (1/5/15 min) at the start and the end of the section. */
  loadStart: number[];
  loadEnd: number[];
  busiest: string[];
  seconds: number;
  /** The share of the machine's CPU time (all cores) that went to processes
   * other than the benchmark and its browser during the section. */
  othersCpuShare?: number;
}

export type PauseVm = 'ours-cpr-exec' | 'ours-copy' | 'v86';
export interface PauseRow {
  vm: PauseVm;
  /** v86 runs i386 only; our live update runs on i386 when it has a v2
   * build, else on arm. */
  guest: 'arm' | 'i386';
  ramMiB: number;
  /** MiB of non-zero bytes the guest wrote into its tmpfs before the runs. */
  filledMiB?: number;
  status: RowStatus;
  note?: string;
  /** The first update (v86: save+restore) after the guest booted, ms: run
   * before the samples and not among them, as it pays for code that runs
   * for the first time (docs/live-update.md, "The first update"). */
  firstMs?: number;
  /** Each sample: ms the guest did not run. */
  samples: number[];
  summary: Summary | null;
  /** Our live update's phases, one object per sample. */
  phases?: Record<string, number>[];
  /** v86: save and restore separately, and the state's size. */
  saveMs?: number[];
  restoreMs?: number[];
  stateBytes?: number[];
  /** The canary file's sha256 was the same after the runs. */
  canaryOk?: boolean;
}
export interface PauseSection {
  run: RunInfo;
  /** What was asked: MiB per guest, or 'most' of each guest's memory. */
  fill: number | 'most';
  runs: number;
  rows: PauseRow[];
}

export type BootVm = 'ours' | 'v86';
export interface BootRow {
  vm: BootVm;
  guest: 'arm' | 'i386';
  mode: 'cold' | 'warm';
  /** Ours: booted from the kernel, or restored from the booted snapshot
   * (the page's Start, issue 13). Rows before it have none: scratch. */
  from?: 'scratch' | 'snapshot';
  status: RowStatus;
  note?: string;
  /** From starting the page load to the shell prompt. */
  promptMs: number | null;
  /** From starting the guest (boot() / new V86()) to the prompt. */
  guestMs: number | null;
  /** Memory after the prompt. */
  pssBytes?: number;
  uaBytes?: number | null;
  uaError?: string | null;
}
export interface DownloadRow {
  vm: BootVm;
  guest: 'arm' | 'i386';
  /** Bytes over the wire as served (the dev server does not compress). */
  servedBytes: number;
  /** The same files gzip -9 (wasm/dist), what a compressing server would send. */
  gzipBytes: number | null;
  requests: number;
  largest: { url: string; bytes: number }[];
}
export interface BootSection {
  run: RunInfo;
  rows: BootRow[];
  downloads: DownloadRow[];
}

export type CpuVm = 'ours-wasm' | 'v86' | 'native-tcg' | 'native-tci';
export interface CpuRow {
  vm: CpuVm;
  guest: 'arm' | 'i386';
  status: RowStatus;
  note?: string;
  wallMs: number[];
  guestS: (number | null)[];
  summary: Summary | null;
}
export interface CpuSection {
  run: RunInfo;
  workload: string;
  rows: CpuRow[];
}

export interface SoakSection {
  run: RunInfo;
  status: RowStatus;
  note?: string;
  guest: 'arm' | 'i386';
  ramMiB: number;
  updates: number;
  pauses: number[];
  summary: Summary | null;
  checksumFailures: number;
  /** Updates that failed (the guest kept running on the old build, so the
   * soak went on), with the error. */
  updateFailures?: string[];
  /** Updates that paused over a second, with their phases. */
  slow?: { update: number; pauseMs: number; phases: Record<string, number> }[];
  /** [update index, browser PSS bytes]. */
  pss: [number, number][];
}

export interface Results {
  format: 1;
  /** Where v86's kernel, initramfs and BIOS came from (or why it has none). */
  v86Assets?: string[];
  /** The largest guest RAM our boot() accepts (RAM_MAX_MIB). */
  ramMaxMiB?: number;
  pause?: PauseSection;
  boot?: BootSection;
  cpu?: CpuSection;
  soak?: SoakSection;
}
