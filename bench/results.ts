// Runs in Node: the shape of docs/bench/results.json. Each section is
// written by one part of the benchmark; a partial run (`--only`) keeps the
// sections it did not run from the previous results file.
import type { Machine, Versions } from './env';
import type { Summary } from './stats';
import type { CpuWorkload } from './page-shell';
import type { GuestName } from '../worker/api';

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
  guest: GuestName;
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
/** Where our page came from: Vite's dev server, or the static build
 * (`npm run build`) under `vite preview`. */
export type Served = 'dev' | 'static';

export interface BootRow {
  vm: BootVm;
  guest: GuestName;
  mode: 'cold' | 'warm';
  /** Booted from the kernel, or started from a saved state: ours from the
   * booted snapshot the build ships (the page's Start, issue 13), v86 from
   * a state it saved earlier in the same run. Rows before it have none:
   * scratch. */
  from?: 'scratch' | 'snapshot';
  /** Ours: the page from Vite's dev server (rows before this field), or
   * from the static build (`npm run build`) under `vite preview`, as a
   * deployment serves it. */
  served?: Served;
  status: RowStatus;
  note?: string;
  /** From starting the page load to the shell prompt. */
  promptMs: number | null;
  /** From starting the guest (boot() / new V86()) to the prompt. */
  guestMs: number | null;
  /** From starting the page load to the shell's answer to `echo $((6*7))`,
   * typed as soon as the prompt showed (issue 13's target). */
  answerMs?: number | null;
  /** v86 from a state: the part of the page load spent fetching its files. */
  fetchMs?: number;
  /** Memory after the prompt. */
  pssBytes?: number;
  uaBytes?: number | null;
  uaError?: string | null;
}
export interface DownloadRow {
  vm: BootVm;
  guest: GuestName;
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

/** 'ours-wasm' is our build on its interpreter, 'ours-jit' the same build
 * with the TCI JIT on (results before the JIT have only 'ours-wasm'). */
export type CpuVm = 'ours-wasm' | 'ours-jit' | 'v86' | 'native-tcg' | 'native-tci';
/** What `info jit` counted after a VM's workloads. */
export interface JitCounts {
  /** Blocks compiled, in how many modules (a region of blocks each), and the wasm bytes. */
  compiled: number;
  modules: number;
  wasmBytes: number;
  modulesAlive: number;
  /** Blocks the compiler could not take, and modules the browser refused. */
  refused: number;
  failed: number;
  /** Time spent compiling, browser included, µs; null from a build that does not say. */
  compileUs: number | null;
}
export interface CpuRow {
  vm: CpuVm;
  guest: GuestName;
  /** Absent in results from before there were two workloads: sha256. */
  workload?: CpuWorkload;
  status: RowStatus;
  note?: string;
  wallMs: number[];
  guestS: (number | null)[];
  summary: Summary | null;
  /** Our VMs: the JIT's counts after every workload ran (null: interpreter). */
  jit?: JitCounts | null;
  /** Our VMs and v86: browser PSS and the page's own measure after the workloads. */
  pssBytes?: number;
  uaBytes?: number | null;
}
export interface CpuSection {
  run: RunInfo;
  /** The sha256 workload's command (kept for older results). */
  workload: string;
  workloads?: Record<CpuWorkload, string>;
  rows: CpuRow[];
}

/** Live update under one engine (bench/jit-update.ts). */
export interface JitUpdateRow {
  guest: GuestName;
  accel: 'interpreter' | 'jit';
  /** How long the guest idled after its last work before each update. */
  settleMs: number;
  status: RowStatus;
  note?: string;
  pausesMs: number[];
  /** Each measured update's pause by phase (PausePhases). */
  phases: Record<string, number>[];
  /** From the update resolving to the shell's answer to `echo $((6*7))`. */
  answersMs: number[];
  /** WARM_WORK before the first update; then, for each sample, right
   * before its update (the build has run since the page's previous
   * update, so its code cache started empty). */
  workBeforeMs: number | null;
  workAfterMs: number[];
  pause: Summary | null;
  answer: Summary | null;
}
export interface JitUpdateSection {
  run: RunInfo;
  work: string;
  /** Both engines' pages ran at once, their updates interleaved: the i-th
   * samples of a guest's jit and interpreter rows of one idle time ran
   * back to back (absent: one engine after the other). */
  interleaved?: boolean;
  rows: JitUpdateRow[];
}

export interface SoakSection {
  run: RunInfo;
  status: RowStatus;
  note?: string;
  guest: GuestName;
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
  /** Each PSS sample followed a garbage collection in the page and its
   * workers (absent in results from before it did). */
  gcBeforeSamples?: boolean;
}

export type SnapshotVm = 'ours' | 'v86';
/** One guest's snapshot right after it booted (idle). */
export interface SnapshotSizeRow {
  vm: SnapshotVm;
  guest: GuestName;
  ramMiB: number;
  status: RowStatus;
  note?: string;
  /** Ours: saveSnapshot()'s file (gzip of QEMU's migration stream behind
   * a JSON header); v86: save_state()'s buffer, which v86 leaves
   * uncompressed. */
  fileBytes: number | null;
  /** Ours: QEMU's migration stream before gzip (the header's stateBytes). */
  stateBytes?: number | null;
  /** v86: its state gzip'd by the browser (CompressionStream), as ours is. */
  gzipBytes?: number | null;
  saveMs: number | null;
}
/** Save and restore of a filled guest, timed. */
export interface SnapshotTimeRow {
  vm: SnapshotVm;
  guest: GuestName;
  ramMiB: number;
  /** MiB of non-zero bytes the guest wrote into its tmpfs (as the pause section fills). */
  filledMiB?: number;
  status: RowStatus;
  note?: string;
  /** Ours: saveSnapshot() to its Blob; v86: save_state(). */
  saveMs: number[];
  /** Ours: restoreSnapshot() to the restored VM running; v86: restore_state(). */
  restoreMs: number[];
  /** From the restore's end to the shell's answer to `echo $((6*7))`. */
  answerMs: number[];
  /** Ours: each file's bytes; v86: each state's. */
  fileBytes: number[];
  /** Ours: QEMU's migration stream before gzip, of the first save. */
  stateBytes?: number;
  /** Ours: QEMU's own time for the migration to a file within each save
   * (`info migrate`); the rest of the save is reading the file out of
   * QEMU, gzip, sha256 and the hand-over to the page. */
  migrateMs?: (number | null)[];
  /** Ours: each restore by phase (snapshot-phases.ts), null where the page
   * did not show a phase's start. */
  restorePhases?: (RestorePhases | null)[];
  /** The canary file's sha256 was the same after every restore. */
  canaryOk?: boolean;
}
/** Where a restoreSnapshot() spends its time, read from the page's status
 * and progress events. */
export interface RestorePhases {
  /** A new worker started and the file checked whole (sha256, gunzip)
   * in it while the running guest goes on (older rows: checked in
   * the running guest's worker). */
  checkMs: number;
  /** The running QEMU and its worker ended; null when the page ended
   * them in the background, off the restore's path. */
  stopMs: number | null;
  /** The new worker made the page's, up to loading the build (before
   * the single check: the file handed to it and checked whole again). */
  recheckMs: number;
  /** The build's artifacts fetched and compiled. */
  buildMs: number;
  /** QEMU started, up to loading the state. */
  qemuStartMs: number;
  /** QEMU loads the migration stream; the VM runs at its end. */
  stateLoadMs: number;
}
/** A booted snapshot the build ships (wasm/dist/snapshots). */
export interface ShippedSnapshot {
  guest: GuestName;
  ramMiB: number;
  /** The .cprsnap file the page fetches (its payload is already gzip). */
  bytes: number;
  /** The .cprsnap.gz stored in wasm/dist, which the dev server sends. */
  gzBytes: number;
  stateBytes: number;
}
export interface SnapshotSection {
  run: RunInfo;
  fill: number | 'most';
  runs: number;
  sizes: SnapshotSizeRow[];
  times: SnapshotTimeRow[];
  shipped: ShippedSnapshot[];
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
  snapshot?: SnapshotSection;
  jitUpdate?: JitUpdateSection;
}
