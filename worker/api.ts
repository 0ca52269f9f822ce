// Shared by both threads: the page (main thread) and the QEMU host worker.
//
// The one contract between the page and the worker. The page imports this
// file and nothing else from worker/; the worker's host `implements`
// QemuWorkerApi. Everything here must type-check with both `lib: dom` and
// `lib: webworker`, so it touches neither `window` nor `self`.
import { transferHandlers, type TransferHandler } from 'comlink';

/** The guests the playground ships. Each has its own QEMU target. */
export type GuestName = 'arm' | 'i386' | 'x86_64' | 'aarch64';
export const GUESTS: readonly GuestName[] = ['arm', 'i386', 'x86_64', 'aarch64'];

/** Guest RAM limits, in MiB. TCI-wasm guests are slow, not small; 1 GiB
 * leaves room in the 2 GiB wasm memory for QEMU itself. */
export const RAM_MIN_MIB = 64;
export const RAM_MAX_MIB = 1024;
export const RAM_STEP_MIB = 16;
export const DEFAULT_RAM_MIB = 128;
/** Booting a Linux guest under TCI in wasm takes 10-60 s here, more on a
 * loaded machine: the default is generous on purpose. */
export const DEFAULT_BOOT_TIMEOUT_MS = 300_000;
export const DEFAULT_MONITOR_TIMEOUT_MS = 30_000;
/** What every guest prints on its serial console once its shell is ready. */
export const GUEST_READY_LINE = 'cpr-playground guest ready';

/** Options of `boot()`. Every field is optional; defaults in brackets. */
export interface BootOptions {
  /** Which guest to boot. [`'arm'`] */
  guest?: GuestName;
  /** Guest RAM in MiB: RAM_MIN_MIB..RAM_MAX_MIB, a multiple of RAM_STEP_MIB. [128] */
  ramMiB?: number;
  /** QEMU build to run, as listed by `builds()`: `'v1'` or a full name such
   * as `'qemu-system-arm@v1'`. [the first build in the manifest] */
  build?: string;
  /** Give up when the guest has not printed GUEST_READY_LINE by then. [300000] */
  bootTimeoutMs?: number;
  /** Extra QEMU arguments, appended after the guest's own (e.g. `['-S']`). [] */
  extraArgs?: string[];
  /** `'snapshot'`: start from the guest's booted snapshot, shipped with
   * the builds (the shell in seconds; BOOTED_SNAPSHOT_RAM_MIB of RAM and
   * no extraArgs); `'scratch'`: the full boot. [`'scratch'`] */
  from?: BootFrom;
  /** How QEMU runs guest code: `'jit'` compiles hot blocks to WebAssembly
   * (the interpreter runs the rest); `'interpreter'` interprets all of
   * it. Kept across live updates. The 64-bit guests (x86_64, aarch64)
   * have the interpreter only. [`'jit'` where the guest has it] */
  accel?: Accel;
}

export type BootFrom = 'scratch' | 'snapshot';
export type Accel = 'jit' | 'interpreter';
export const ACCELS: readonly Accel[] = ['jit', 'interpreter'];
/** The guests whose QEMU has the JIT: the 32-bit ones. The 64-bit guests'
 * QEMU is a wasm64 build (64-bit TCG host registers), for which the JIT,
 * written for a 32-bit host's bytecode, is not built. */
export const JIT_GUESTS: readonly GuestName[] = ['arm', 'i386'];
/** The RAM size the booted snapshots are saved with. */
export const BOOTED_SNAPSHOT_RAM_MIB = 128;

/** Lifecycle of the one QEMU instance the worker owns. */
export type RunState =
  | 'idle' // nothing started yet
  | 'loading' // fetching QEMU and the guest images
  | 'starting' // instantiating the wasm module, QEMU initialising
  | 'booting' // QEMU runs, the guest has not reached its shell yet
  | 'running' // guest ready
  | 'paused' // VM stopped from the monitor (`stop`); `cont` resumes
  | 'updating' // live update in progress: the VM is paused while QEMU is replaced
  | 'stopping'
  | 'stopped' // QEMU ended (stop(), or the guest powered off)
  | 'error'; // QEMU could not start or ended on an error; see Status.error

export interface ErrorInfo {
  code: PlaygroundErrorCode;
  message: string;
}

export interface Status {
  /** Grows with every change; status events may arrive after a call's
   * own result, so the page keeps the one with the highest seq. */
  seq: number;
  state: RunState;
  guest: GuestName | null;
  /** Full name of the running build, e.g. `qemu-system-arm@v1`. */
  build: string | null;
  /** QEMU's full argv, program name first. */
  argv: string[];
  ramMiB: number | null;
  /** How QEMU runs guest code (`info jit` in the monitor counts the
   * compiled blocks). */
  accel: Accel | null;
  /** Set while state is 'error'. */
  error: ErrorInfo | null;
}

export type ProgressPhase = 'manifest' | 'download' | 'instantiate' | 'boot' | 'done';

/** Download and boot progress. `loaded`/`total` are bytes during
 * 'download' (total 0 when unknown). */
export interface Progress {
  phase: ProgressPhase;
  label: string;
  loaded: number;
  total: number;
}

/** A QEMU build the worker can start. */
export interface BuildInfo {
  /** e.g. `qemu-system-arm@v1` */
  name: string;
  guest: GuestName;
  /** e.g. `v1` */
  version: string;
}

/** Options of `liveUpdate()`. */
export interface LiveUpdateOptions {
  /** `'cpr-exec'` [default]: QEMU's cpr-exec, guest RAM stays in place in
   * the shared Memory. `'copy'`: the baseline for benchmarks: a normal
   * migration to a file (RAM in the stream), then a fresh instance on a
   * fresh Memory started with `-incoming` from that file. */
  route?: LiveUpdateRoute;
  /** Give up waiting for the VM to run on the new build after this. [120000] */
  timeoutMs?: number;
}

export type LiveUpdateRoute = 'cpr-exec' | 'copy';

/** Where the guest's pause went, in milliseconds. */
export interface PausePhases {
  /** `migrate` sent → QEMU exec'd (device state written; copy: RAM too). */
  stateSaveMs: number;
  /** The old instance and its threads ended. */
  teardownMs: number;
  /** The old heap cleared (cpr-exec) / a fresh Memory made (copy). */
  clearMs: number;
  /** The new build instantiated on the Memory, its runtime up. */
  instantiateMs: number;
  /** QEMU's main() until its monitor answers (machine created, RAM
   * mapped), or until the VM runs if that came first: QEMU loads the
   * state as soon as its main loop starts, often before the host has
   * negotiated its QMP channel, and then the load is counted here. */
  qemuInitMs: number;
  /** The monitor answers → the VM runs (device state loaded); 0 when the
   * VM ran first. */
  stateLoadMs: number;
}

export interface LiveUpdateResult {
  /** Guest pause: the VM stopped → it runs on the new build. The ends
   * are QEMU's own STOP and RESUME times where the host saw those events
   * (otherwise `migrate` sent, and the answer that says it runs). */
  pauseMs: number;
  /** Build names, e.g. `qemu-system-arm@v1` → `qemu-system-arm@v2`. */
  from: string;
  to: string;
  route: LiveUpdateRoute;
  /** The new QEMU started before the VM stopped, and waited at its CPR
   * state (the two builds keep their heaps in different slots of the
   * Memory): the old one's teardown, the clear and the instantiation
   * were outside the pause, and their phases are 0. */
  startedEarly: boolean;
  phases: PausePhases;
}

/** Callbacks the page hands to the worker (wrapped in Comlink.proxy()). */
export interface WorkerListener {
  serial(bytes: Uint8Array): void;
  monitor(bytes: Uint8Array): void;
  status(status: Status): void;
  progress(progress: Progress): void;
  /** QEMU's own stdout/stderr lines: where its error messages go. */
  log(line: string): void;
  /** A live update finished (also one typed into the monitor). */
  liveUpdate(result: LiveUpdateResult): void;
}

export interface WorkerConfig {
  /** Absolute URL of the unpacked artifacts (wasm/out), ending in '/'. */
  artifactsBase: string;
  /** Failures to inject into the exec path, to show (and test) that a
   * live update survives them (the page's `?fault=` parameter). [] */
  faults?: ExecFault[];
}

/**
 * - `kill-new-instance`: every new QEMU a live update starts is ended
 *   right after it launched, as if its instance worker died;
 * - `truncate-state`: the device state handed to the new QEMU is cut to
 *   half its length (the old build's fallback gets the bytes QEMU saved).
 */
export type ExecFault = 'kill-new-instance' | 'truncate-state';
export const EXEC_FAULTS: readonly ExecFault[] = ['kill-new-instance', 'truncate-state'];

/** The worker's API over Comlink. Every method may reject with a
 * PlaygroundError. */
export interface QemuWorkerApi {
  init(config: WorkerConfig, listener: WorkerListener): Promise<void>;
  /** Builds available from the artifacts manifest. */
  builds(): Promise<BuildInfo[]>;
  /** Starts QEMU and resolves once the guest's shell is ready. A running
   * instance is stopped first. */
  boot(options: BootOptions): Promise<Status>;
  writeSerial(bytes: Uint8Array): Promise<void>;
  /** Raw bytes to the HMP monitor (for an interactive console). */
  writeMonitor(bytes: Uint8Array): Promise<void>;
  /** Runs one HMP command and resolves with its output (without the echo
   * and the prompt). */
  monitor(command: string, timeoutMs?: number): Promise<string>;
  status(): Promise<Status>;
  /** Ends QEMU and all its threads. */
  stop(): Promise<Status>;
  /** Resets the guest (HMP `system_reset`) and waits for its shell again. */
  reset(): Promise<Status>;
  /** Replaces the running QEMU by build `target` (`v2`,
   * `qemu-system-arm@v2`, ...) while the guest keeps running. */
  liveUpdate(target: string, options?: LiveUpdateOptions): Promise<LiveUpdateResult>;
  /** Saves the running VM as a snapshot file (docs/api.md: guest RAM and
   * QEMU's device state, or QEMU's whole migration stream); the VM runs on. */
  saveSnapshot(): Promise<Blob>;
  /** Checks a snapshot file whole (and that this page can restore it)
   * without touching anything; rejects with bad-snapshot and the reason. */
  checkSnapshot(file: Blob | Uint8Array, options?: RestoreOptions): Promise<SnapshotInfo>;
  /** Checks a snapshot file whole as checkSnapshot() does, and keeps what
   * it holds for restoreOpened(): the page has a fresh worker check the
   * file while the running guest (in another worker) goes on, and ends
   * that guest only for a good file. A Blob is read here; bytes come
   * transferred. */
  openSnapshot(file: Blob | Uint8Array, options?: RestoreOptions): Promise<SnapshotInfo>;
  /** Replaces the running guest (if any) by the VM of the snapshot
   * openSnapshot() checked; resolves once that VM runs. Nothing is
   * checked or decompressed again. */
  restoreOpened(): Promise<Status>;
  /** Writes `bytes` to the guest file `path` (absolute; parent folders
   * made; up to 64 MiB) through the guest's file channel; resolves with
   * the size the guest reports. Bytes come transferred. */
  putFile(path: string, bytes: Uint8Array): Promise<number>;
  /** The bytes of the guest file `path` (up to 64 MiB), transferred. */
  getFile(path: string): Promise<Uint8Array>;
}

/** What a snapshot file says about the VM in it. */
export interface SnapshotInfo {
  guest: GuestName;
  /** Full build name of the QEMU that saved it, e.g. `qemu-system-arm@v1`. */
  build: string;
  ramMiB: number;
  /** QEMU's arguments after the program name, without -incoming. */
  argv: string[];
  /** ISO time of the save. */
  createdAt: string;
  /** Bytes of QEMU's migration stream (uncompressed). */
  stateBytes: number;
}

/** Options of `restoreSnapshot()`. */
export interface RestoreOptions {
  /** Restore on this build instead of the one that saved it (`'v2'`). [the snapshot's] */
  build?: string;
  /** Give up when the VM does not run by then. [300000] */
  timeoutMs?: number;
}

export type PlaygroundErrorCode =
  | 'not-isolated' // no crossOriginIsolated, so no SharedArrayBuffer
  | 'load-failed' // an artifact could not be fetched or instantiated
  | 'bad-options' // invalid boot options
  | 'bad-state' // the call does not fit the current state
  | 'boot-timeout' // the guest never reached its shell
  | 'monitor-timeout' // an HMP command did not finish
  | 'timeout' // a wait (e.g. waitForSerial) ran out of time
  | 'qemu-exited' // QEMU ended on its own
  | 'live-update-refused' // refused before the VM stopped; the guest ran on untouched
  | 'live-update-failed' // failed after the VM stopped; the VM runs again on the old build
  | 'bad-snapshot' // a snapshot file was refused before anything was touched
  | 'snapshot-failed' // QEMU could not save or load a snapshot
  | 'file-failed' // putFile/getFile: the guest could not take or give the file
  | 'worker-crashed'; // the worker itself failed

/** The one error type of the playground. Messages say what happened and
 * what to do; `code` is for programs. Do not rely on `instanceof` after a
 * thread boundary; check `isPlaygroundError()` or `code`. */
export class PlaygroundError extends Error {
  readonly code: PlaygroundErrorCode;
  constructor(code: PlaygroundErrorCode, message: string) {
    super(message);
    this.name = 'PlaygroundError';
    this.code = code;
  }
  toJSON(): ErrorInfo {
    return { code: this.code, message: this.message };
  }
}

export function isPlaygroundError(e: unknown): e is PlaygroundError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && e.name === 'PlaygroundError';
}

/** Any thrown value as ErrorInfo, for status and the error panel. */
export function toErrorInfo(e: unknown, fallback: PlaygroundErrorCode = 'worker-crashed'): ErrorInfo {
  if (isPlaygroundError(e)) return { code: e.code, message: e.message };
  if (e instanceof Error) return { code: fallback, message: e.message };
  return { code: fallback, message: String(e) };
}

interface ThrownWire {
  isError: boolean;
  value: unknown;
}
interface ThrownValue {
  value: unknown;
}
interface SerializedPlaygroundError {
  playgroundError: ErrorInfo & { stack?: string };
}

function isSerializedPlaygroundError(v: unknown): v is SerializedPlaygroundError {
  return typeof v === 'object' && v !== null && 'playgroundError' in v;
}

/**
 * Makes PlaygroundError (with its code) survive Comlink's boundary. Comlink
 * sends thrown values through its built-in 'throw' handler, which keeps
 * only message/name/stack; we wrap that handler (same key, so Comlink
 * still picks it first) and add the code. Call once on each side before
 * any call crosses; calling again is harmless.
 */
export function registerTransferHandlers(): void {
  const current = transferHandlers.get('throw') as
    | (TransferHandler<ThrownValue, ThrownWire> & { playground?: true })
    | undefined;
  if (!current || current.playground) return;
  const original = current;
  const handler: TransferHandler<ThrownValue, ThrownWire> & { playground: true } = {
    playground: true,
    canHandle: (v): v is ThrownValue => original.canHandle(v),
    serialize(thrown) {
      const e = thrown.value;
      if (isPlaygroundError(e)) {
        const wire: SerializedPlaygroundError = {
          playgroundError: { code: e.code, message: e.message, stack: e.stack },
        };
        return [{ isError: false, value: wire }, []];
      }
      return original.serialize(thrown);
    },
    deserialize(wire) {
      if (!wire.isError && isSerializedPlaygroundError(wire.value)) {
        const { code, message, stack } = wire.value.playgroundError;
        const e = new PlaygroundError(code, message);
        if (stack) e.stack = stack;
        throw e;
      }
      return original.deserialize(wire);
    },
  };
  transferHandlers.set('throw', handler as TransferHandler<unknown, unknown>);
}
