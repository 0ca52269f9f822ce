// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// Live update: QEMU's cpr-exec in the browser. QEMU stops the VM, writes
// its device state to a file, records its memfds (guest RAM) in the CPR
// state memfd and exec's `cpr-exec-command`. Here exec reaches the host as
// an ExecRequest from the instance worker (wasm/emscripten/cpr-exec.js →
// worker/qemu/instance.ts), and the exec path:
//   1. ends the old instance worker (its runtime and all QEMU's threads),
//   2. clears the Memory below the old heap top,
//   3. starts the build argv[0] names, already compiled, on the same
//      Memory, with QEMU's environment, the memfds reopened under the same
//      fds and the state file carried over,
//   4. waits on the new QEMU's QMP until its VM runs (RESUME).
// When the running build and the target keep their heaps in different
// slots of the Memory (memory.ts: v1 and v2 of a 32-bit target), steps 1-3
// move out of the pause: the target starts before the VM stops, waits at
// its CPR state (the cpr-early series), and is handed the exec; the old
// instance ends beside it (startEarly(), replaceEarly()).
// If anything after the VM stopped fails, the old build is started the same
// way from the same state (QEMU itself restarts the VM when exec fails
// before that point). The same flow serves liveUpdate() (driven over QMP)
// and the commands a user types into the HMP console. Route 'copy' is the
// benchmark baseline: a normal migration to a file, a fresh instance on a
// fresh Memory.
//
// One Update object owns a pending update from its start to its end, and
// every way out (done, refused, failed and restored, timed out, QEMU died,
// fallback failed) goes through Update.end(), the one place that clears it.
import { PlaygroundError, type ExecFault, type LiveUpdateResult, type LiveUpdateRoute, type PausePhases } from './api';
import {
  clearBelow,
  HEAP_LIMIT,
  RegionTable,
  SLOT_SPLIT,
  slotStart,
  type EndedThreads,
  type ExecRequest,
  type OpenMemfd,
  type QemuInstanceLike,
  type RegionEntry,
  withQmpConsole,
} from './backend';
import type { ResolvedBuild } from './builds';
import { QmpError, type QmpClient } from './qmp';

/** A build ready to start: compiled, its live-update support known. */
export interface PreparedBuild {
  build: ResolvedBuild;
  /** Where the glue finds the wasm (pthreads get the compiled module). */
  wasmUrl: string;
  module?: WebAssembly.Module;
  /** Why it cannot take over a running guest's RAM, or undefined. */
  layoutProblem: string | undefined;
  /** Where its static data starts (memory.ts slots), when its glue says. */
  staticBase?: number;
}

/** One running QEMU and its control channel. */
export interface Running {
  instance: QemuInstanceLike;
  qmp: QmpClient;
}

/** What a session holds for live updates (the host's Session extends it). */
export interface UpdateSession {
  memory: WebAssembly.Memory | null;
  prepared: PreparedBuild | null;
  /** The guest's QEMU arguments (no -incoming), for the next build. */
  baseArgv: string[];
  guestFiles: Record<string, Uint8Array>;
  running: Running | null;
  update: Update | null;
  /** QEMU's time of the STOP event while the VM is stopped, else null. */
  stoppedAt: number | null;
  /** Wall clock ms when a typed `migrate` line was seen in HMP. */
  migrateTypedAt: number | null;
  /** Settles once the Memory below the heap limit holds nothing but the
   * running instance: a slot that an ended instance left is cleared
   * after its update, outside the pause. */
  slotsClear: Promise<void>;
}

export interface StartRequest {
  prepared: PreparedBuild;
  argv: string[];
  memory: WebAssembly.Memory | null;
  env?: Record<string, string>;
  adopt?: OpenMemfd[];
  files: Record<string, Uint8Array>;
  /** Buffers of `files` handed to the instance worker rather than copied
   * (detached here): a restore's state, which nothing here needs again. */
  transfer?: ArrayBuffer[];
  /** Start before the exec it replaces (startEarly()): the instance is
   * not the session's running one yet, and its QEMU waits at its CPR
   * state for handOver(); `adopt` is what the running QEMU has open. */
  early?: boolean;
}

/** How an update ended. */
export type UpdateOutcome =
  | { kind: 'updated'; result: LiveUpdateResult; prepared: PreparedBuild; argv: string[] }
  /** Refused before the VM stopped: the guest ran on, untouched. */
  | { kind: 'refused'; error: PlaygroundError }
  /** Failed after the VM stopped; the VM runs again on the old build. */
  | { kind: 'restored'; error: PlaygroundError }
  /** The VM could not be brought back: the session is lost. */
  | { kind: 'lost'; error: PlaygroundError };

/** What the exec path needs from the host. */
export interface UpdatePort<S extends UpdateSession> {
  /** Starts an instance for the session with its consoles wired; it
   * becomes s.running. */
  launch(s: S, req: StartRequest, onRuntimeReady: (at: number) => void, onAwaitingExec?: (at: number) => void): Promise<Running>;
  prepare(s: S, target: string): Promise<PreparedBuild>;
  /** Starts the next instance's worker and threads ahead of the pause;
   * settles once it is staged (its glue loaded, its file system filled). */
  prewarm(s: S, prepared: PreparedBuild): Promise<void>;
  /** Runs the build once off to the side before its first update, so
   * its start in the pause finds its code compiled (warm-up.ts). */
  warmUp(s: S, prepared: PreparedBuild): Promise<void>;
  createMemory(): WebAssembly.Memory;
  /** The VM is about to stop for an update (the page shows 'updating'). */
  pausing(s: S): void;
  /** An update ended; called once per update, from Update.end(). */
  ended(s: S, outcome: UpdateOutcome): void;
  log(line: string): void;
}

export const STATE_FILE = '/vm.state';
export const COPY_FILE = '/vm.copy';
/** Cleared above the old heap top, for allocations that raced the end. */
const CLEAR_MARGIN = 16 * 1024 ** 2;

/** Clears what an ended instance left in its slot (from `from`, the
 * slot's start) below its heap top and a margin above it; with the top
 * unknown (0), everything up to the heap limit. */
function clearOldHeap(memory: WebAssembly.Memory, heapTop: number, from = 0, end = HEAP_LIMIT): void {
  clearBelow(memory, Math.min(heapTop ? heapTop + CLEAR_MARGIN : end, end), heapTop, from);
}

/** The start of a build's slot (0: the lower one, or no slots known). */
function slotOf(p: PreparedBuild): number {
  return slotStart(p.staticBase ?? 0);
}

/** Clears what an ended instance of `p` left in its slot while the other
 * slot's instance runs on: never past its slot's end. */
function clearSlot(memory: WebAssembly.Memory, p: PreparedBuild, heapTop: number): void {
  const from = slotOf(p);
  clearOldHeap(memory, heapTop, from, from === 0 ? SLOT_SPLIT : HEAP_LIMIT);
}

/** An instance started before the exec it replaces (startEarly()). */
interface EarlyStart {
  running: Running;
  prepared: PreparedBuild;
  /** The cpr-exec-command it was started for (the exec must match). */
  command: string[];
  runtimeReadyAt: number;
}
/** How long an update waits for the next instance to be staged before
 * it stops the VM anyway (the pause then pays for the rest). */
const STAGE_WAIT_MS = 5000;
/** A worker that failed to launch is surely gone by then (Chromium ends
 * a busy worker by force 2 s after terminate()). */
const WORKER_GONE_MS = 2500;
/** One attempt of a new instance to run the VM (normally < 1 s). */
export const ATTEMPT_TIMEOUT_MS = 20_000;
export const DEFAULT_UPDATE_TIMEOUT_MS = 120_000;

export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/** The build name in cpr-exec-command's argv[0] (a path's last part). */
export function execName(argv0: string): string {
  return argv0.split('/').pop() ?? argv0;
}

/** A file path as the new instance's FS needs it (cwd is /). */
export function absolute(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

/** The files an exec carried, by the absolute paths the next FS needs. */
function execFiles(req: ExecRequest): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (const [path, bytes] of Object.entries(req.files)) files[absolute(path)] = bytes;
  return files;
}

/** KEY=VALUE strings as an object. */
export function parseEnv(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const i = e.indexOf('=');
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

/** cpr-exec-command for a target: argv of the new QEMU. */
export function cprExecCommand(name: string, baseArgv: readonly string[], stateFile = STATE_FILE): string[] {
  return [name, ...baseArgv, '-incoming', `file:${stateFile}`];
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Preserved memfds as they were at exec, with the bytes of the small
 * ones (the CPR state): the next QEMU closes and frees the CPR state
 * memfd once read, and a fallback needs it again. */
interface SavedFiles {
  entries: RegionEntry[];
  bytes: Map<number, Uint8Array>;
}

const SAVE_BYTES_UP_TO = 4 * 1024 ** 2;

function saveFiles(memory: WebAssembly.Memory, open: readonly OpenMemfd[]): SavedFiles {
  const table = new RegionTable(memory);
  const files = new Set(open.map((o) => o.file));
  const entries = table.entries().filter((e) => files.has(e.index));
  const bytes = new Map<number, Uint8Array>();
  for (const e of entries) if (e.size <= SAVE_BYTES_UP_TO) bytes.set(e.index, new Uint8Array(memory.buffer, e.base, e.size).slice());
  return { entries, bytes };
}

function restoreFiles(memory: WebAssembly.Memory, saved: SavedFiles): void {
  new RegionTable(memory).restore(saved.entries);
  const u8 = new Uint8Array(memory.buffer);
  for (const e of saved.entries) {
    const b = saved.bytes.get(e.index);
    if (b) u8.set(b, e.base);
  }
}

/** Timestamps of one instance start, for the phases. */
interface StartTimes {
  runtimeReadyAt: number;
  /** QMP answered: QEMU created the machine and mapped RAM. */
  monitorAt: number;
  /** The VM runs (QEMU's RESUME, or our clock if it ran already). */
  runningAt: number;
}

/** When the old instance's parts ended (wall clock ms): its threads, the
 * clear of the memory below its heap top (meanwhile the old instance
 * settles), and `gone`: when the new one could start (the old instance
 * ended as a whole, or, if it was inert, the clear's end). */
interface Teardown {
  threadsEnded: number;
  cleared: number;
  gone: number;
}

function phasesFrom(t0: number, execAt: number, d: Teardown, t: StartTimes): PausePhases {
  const r = (x: number): number => Math.max(0, Math.round(x * 10) / 10);
  return {
    stateSaveMs: r(execAt - t0),
    // The clear overlaps the old instance's end: teardown is the rest.
    teardownMs: r(d.threadsEnded - execAt + (d.gone - d.cleared)),
    clearMs: r(d.cleared - d.threadsEnded),
    instantiateMs: r(t.runtimeReadyAt - d.gone),
    qemuInitMs: r(Math.min(t.monitorAt, t.runningAt) - t.runtimeReadyAt),
    stateLoadMs: r(t.runningAt - t.monitorAt),
  };
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function race<T>(p: Promise<T>, ...others: Promise<never>[]): Promise<T> {
  return Promise.race([p, ...others]);
}

/** A promise that rejects after ms with `what`, and its cancel. */
function deadline(ms: number, what: () => Error): { expired: Promise<never>; clear(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(what()), ms);
  });
  expired.catch(() => undefined);
  return { expired, clear: () => clearTimeout(timer) };
}

/**
 * Waits until the VM of a just-started QEMU runs: its QMP greets, then
 * query-status says running, or its incoming migration ends and RESUME
 * comes; a VM that loaded paused (the copy route stops the source first)
 * is continued. Rejects when QEMU exits or the time runs out.
 */
export async function waitRunning(r: Running, timeoutMs: number, name: string): Promise<{ monitorAt: number; runningAt: number }> {
  const { qmp, instance } = r;
  const died = instance.exited.then((exit): never => {
    throw new Error(`${name} exited with status ${exit.status}${exit.message ? ` (${exit.message})` : ''} before the VM ran`);
  });
  died.catch(() => undefined);
  const limit = deadline(timeoutMs, () => new Error(`${name} did not run the VM within ${timeoutMs} ms`));
  const resumed = qmp.waitFor((e) => (e.kind === 'resume' ? e.at : undefined), timeoutMs, `${name} did not run the VM`);
  // QEMU runs the VM as soon as it has loaded the state, often before our
  // query-status is answered. Its RESUME comes first on the channel (when
  // the capabilities were negotiated in time), and its timestamp is when
  // the guest ran again: the end of the pause. Without it, the answer's
  // arrival is the best bound we have.
  let resumedAt: number | undefined;
  resumed.promise.then((at) => (resumedAt = at), () => undefined);
  const loaded = qmp.waitFor((e) => (e.kind === 'migration' && (e.status === 'completed' || e.status === 'failed') ? e.status : undefined), timeoutMs, `${name} did not load the state`);
  try {
    const monitorAt = await race(qmp.ready, died, limit.expired);
    let st = await race(qmp.status(), died, limit.expired);
    if (st.running) return { monitorAt, runningAt: resumedAt ?? wallClock() };
    if (st.status === 'inmigrate') {
      const next = await race(Promise.race([resumed.promise.then((at) => ({ at })), loaded.promise.then((status) => ({ status }))]), died, limit.expired);
      if ('at' in next) return { monitorAt, runningAt: next.at };
      if (next.status === 'failed') throw new Error(`${name} could not load the device state`);
      st = await race(qmp.status(), died, limit.expired);
      if (st.running) return { monitorAt, runningAt: resumedAt ?? wallClock() };
    }
    // Loaded, but paused: the source was paused (copy route stops it first).
    await race(qmp.execute('cont'), died, limit.expired);
    return { monitorAt, runningAt: await race(resumed.promise, died, limit.expired) };
  } finally {
    limit.clear();
    resumed.cancel();
    loaded.cancel();
  }
}

/** Why QEMU's last migration failed, in its words. */
async function migrationError(qmp: QmpClient): Promise<string> {
  const info = await qmp.execute<{ 'error-desc'?: string }>('query-migrate').catch(() => ({ 'error-desc': undefined }));
  return info['error-desc'] ?? 'the migration failed';
}

/**
 * QEMU's whole state (RAM included) through a normal migration to a file
 * in its file system, read back: the copy route's save and a snapshot's.
 * The VM is paused for it and runs again afterwards if it ran before
 * (`keepPaused` leaves it paused, for a copy update that ends the QEMU).
 */
export async function saveState(r: Running, path: string, timeoutMs: number, keepPaused = false): Promise<Uint8Array> {
  const { qmp, instance } = r;
  const wasRunning = (await qmp.status()).running;
  let ok = false;
  try {
    if (wasRunning) await qmp.execute('stop');
    const migrated = qmp.waitFor((e) => (e.kind === 'migration' && (e.status === 'completed' || e.status === 'failed') ? e.status : undefined), timeoutMs, 'the migration to a file did not end');
    try {
      await qmp.execute('migrate-set-parameters', { mode: 'normal' });
      await qmp.execute('migrate', { uri: `file:${path}` });
      if ((await migrated.promise) === 'failed') throw new Error(`QEMU says: ${await migrationError(qmp)}`);
    } finally {
      migrated.cancel();
    }
    // Out of QEMU's file system too: else a saved guest's RAM stays there
    // as well, as long as that QEMU runs.
    const state = await instance.readFile?.(path, true);
    if (!state || state.length === 0) throw new Error(`QEMU wrote no ${path}`);
    ok = true;
    return state;
  } finally {
    if (wasRunning && !(ok && keepPaused)) await qmp.execute('cont').catch(() => undefined);
  }
}

/** The state files cut to half their length (a fault). */
function truncated(files: Record<string, Uint8Array>): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [path, bytes] of Object.entries(files)) out[path] = bytes.slice(0, bytes.length >> 1);
  return out;
}

type Phase = 'commanding' | 'migrating' | 'replacing';

/** One pending live update: created by begin(), ended by end() only. */
export class Update {
  phase: Phase = 'commanding';
  /** Instances this update ends on purpose: their exit is not QEMU dying. */
  readonly retiring = new Set<QemuInstanceLike>();
  /** The next QEMU, started before the VM stopped, until the exec. */
  early: EarlyStart | null = null;
  readonly outcome: Promise<UpdateOutcome>;
  private settle!: (o: UpdateOutcome) => void;
  private done = false;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    readonly route: LiveUpdateRoute,
    readonly target: string,
    /** Wall clock ms: the pause begins here at the latest. */
    public t0: number,
    private readonly onEnd: (o: UpdateOutcome) => void,
  ) {
    this.outcome = new Promise<UpdateOutcome>((resolve) => (this.settle = resolve));
  }

  get ended(): boolean {
    return this.done;
  }

  /** Runs `fn` when the update ends (timers, event listeners). */
  onCleanup(fn: () => void): void {
    if (this.done) fn();
    else this.cleanups.push(fn);
  }

  /** The one way out: settles once, runs the cleanups, tells the host. */
  end(o: UpdateOutcome): void {
    if (this.done) return;
    this.done = true;
    for (const fn of this.cleanups.splice(0)) fn();
    this.settle(o);
    this.onEnd(o);
  }
}

/** The result, or the error, of an outcome. */
export async function resultOf(u: Update): Promise<LiveUpdateResult> {
  const o = await u.outcome;
  if (o.kind === 'updated') return o.result;
  throw o.error;
}

export class LiveUpdates<S extends UpdateSession> {
  constructor(
    private readonly port: UpdatePort<S>,
    /** How long one new instance gets to run the VM. */
    private readonly attemptMs = ATTEMPT_TIMEOUT_MS,
    /** Failures to inject (WorkerConfig.faults). */
    private readonly faults: () => readonly ExecFault[] = () => [],
  ) {}

  /** A pending update for the session; every route starts here. */
  begin(s: S, route: LiveUpdateRoute, target: string, t0: number): Update {
    if (s.update) throw new PlaygroundError('bad-state', `a live update to ${s.update.target} is in progress`);
    const u = new Update(route, target, t0, (o) => {
      if (s.update === u) s.update = null;
      this.port.ended(s, o);
    });
    s.update = u;
    return u;
  }

  /** liveUpdate(target) on the cpr-exec route: QEMU's own commands over
   * QMP, then the exec that QEMU makes. */
  async viaCprExec(s: S, prepared: PreparedBuild, timeoutMs: number): Promise<LiveUpdateResult> {
    const from = s.prepared?.build.name ?? '?';
    const refused = (why: string): PlaygroundError =>
      new PlaygroundError('live-update-refused', `live update ${from} → ${prepared.build.name} refused: ${why}; the guest runs on ${from}, untouched`);
    if (!s.memory || s.prepared?.layoutProblem) throw refused(s.prepared?.layoutProblem ?? `${from} does not run on a shared Memory`);
    if (prepared.layoutProblem) throw refused(prepared.layoutProblem);
    if (!s.running) throw new PlaygroundError('bad-state', 'QEMU is not running');
    await this.port.warmUp(s, prepared);
    const running = s.running;
    if (!running) throw new PlaygroundError('bad-state', 'QEMU is not running');
    const u = this.begin(s, 'cpr-exec', prepared.build.name, wallClock());
    // The VM stops only once the next instance is staged: its start,
    // not the guest, waits for that (normally well under a second).
    const staging = deadline(STAGE_WAIT_MS, () => new Error('not staged in time'));
    await race(this.port.prewarm(s, prepared), staging.expired).catch(() => undefined);
    staging.clear();
    await this.startEarly(s, u, prepared, running);
    this.watchMigration(s, u, running.qmp);
    try {
      await running.qmp.execute('migrate-set-parameters', { mode: 'cpr-exec', 'cpr-exec-command': cprExecCommand(prepared.build.name, s.baseArgv) });
      u.t0 = wallClock();
      u.phase = 'migrating';
      await running.qmp.execute('migrate', { uri: `file:${STATE_FILE}` });
      this.port.pausing(s);
    } catch (e) {
      // QEMU refused (a blocker) or did not answer: the VM never stopped.
      if (u.phase === 'commanding' || e instanceof QmpError) u.end({ kind: 'refused', error: refused(`QEMU says: ${message(e)}`) });
      else void this.abandon(s, u, `QMP failed during migrate: ${message(e)}`);
      return resultOf(u);
    }
    // Until the exec comes, an update that takes too long is given up:
    // migrate_cancel, and the old QEMU runs the VM on. Once the new QEMU
    // is starting, its own attempts bound the time.
    const timer = setTimeout(() => {
      if (u.phase !== 'replacing') void this.abandon(s, u, `no exec within ${timeoutMs} ms`);
    }, timeoutMs);
    u.onCleanup(() => clearTimeout(timer));
    return resultOf(u);
  }

  /** QEMU exec'd: replace the instance (typed or from liveUpdate()). */
  async onExec(s: S, req: ExecRequest): Promise<void> {
    const name = execName(req.argv[0] ?? '');
    // Typed: the pause began at the STOP (or the typed `migrate`), else at exec.
    const typedT0 = Math.max(s.stoppedAt ?? 0, s.migrateTypedAt ?? 0) || req.at;
    let u: Update;
    try {
      u = s.update ?? this.begin(s, 'cpr-exec', name, Math.min(typedT0, req.at));
    } catch {
      return; // begin() refuses only while another update runs
    }
    u.phase = 'replacing';
    this.port.pausing(s);
    try {
      await this.replace(s, u, req, name);
    } catch (e) {
      // Nothing above should throw past its own fallback; if it does, the
      // update still ends here, and says why.
      u.end({ kind: 'lost', error: new PlaygroundError('live-update-failed', `live update to ${name} failed: ${message(e)}`) });
    }
  }

  /**
   * When the running build and the next keep their heaps in different
   * slots of the Memory (memory.ts), starts the next QEMU now, before the
   * VM stops: it runs up to its CPR state and waits there for the exec
   * (the cpr-early series). Its instantiation and start, the old
   * instance's teardown and the clear are then out of the pause. If it
   * cannot start, the update goes on as usual: the next QEMU starts at
   * the exec.
   */
  private async startEarly(s: S, u: Update, prepared: PreparedBuild, running: Running): Promise<void> {
    const from = s.prepared;
    const memory = s.memory;
    if (!from || !memory || from.staticBase === undefined || prepared.staticBase === undefined) return;
    if (slotOf(from) === slotOf(prepared) || !running.instance.openMemfds) return;
    const t = wallClock();
    const limit = deadline(STAGE_WAIT_MS, () => new Error(`it did not reach its CPR state within ${STAGE_WAIT_MS} ms`));
    try {
      // The slot the last update left is cleared once that update ended.
      await s.slotsClear;
      const open = await running.instance.openMemfds();
      const command = cprExecCommand(prepared.build.name, s.baseArgv);
      let runtimeReadyAt = 0;
      let reached!: () => void;
      const awaiting = new Promise<void>((resolve) => (reached = resolve));
      const r = await this.port.launch(
        s,
        { prepared, argv: withQmpConsole(command.slice(1)), memory, adopt: open, files: s.guestFiles, early: true },
        (at) => (runtimeReadyAt = at),
        () => reached(),
      );
      u.early = { running: r, prepared, command, runtimeReadyAt };
      u.onCleanup(() => void this.discardEarly(s, u));
      const died = r.instance.exited.then((exit): never => {
        throw new Error(`it exited with status ${exit.status}${exit.message ? ` (${exit.message})` : ''}`);
      });
      died.catch(() => undefined);
      await race(awaiting, died, limit.expired);
      // The old QEMU's threads end once the new one runs the VM, not at
      // the exec: on two cores their end slowed the new QEMU's start.
      running.instance.successorStarted?.();
      this.port.log(`[live-update] ${prepared.build.name} started early: at its CPR state after ${Math.round(wallClock() - t)} ms`);
    } catch (e) {
      this.port.log(`[live-update] ${prepared.build.name} could not start early (${message(e)}); it starts at the exec`);
      if (u.early) await this.discardEarly(s, u);
      else this.clearAfterFailedLaunch(s, prepared);
    } finally {
      limit.clear();
    }
  }

  /** A launch that failed may have instantiated the build in its slot
   * before it ended: clear the slot, up to the heap limit (its top is not
   * known), once the browser has surely ended its worker. */
  private clearAfterFailedLaunch(s: S, prepared: PreparedBuild): void {
    const memory = s.memory!;
    const last = s.slotsClear;
    s.slotsClear = (async () => {
      await last;
      await new Promise((r) => setTimeout(r, WORKER_GONE_MS));
      clearSlot(memory, prepared, 0);
    })();
  }

  /** Ends an instance started early that the update will not use, and
   * clears its slot. */
  private discardEarly(s: S, u: Update): Promise<void> {
    const e = u.early;
    if (!e) return s.slotsClear;
    u.early = null;
    u.retiring.add(e.running.instance);
    const memory = s.memory!;
    const last = s.slotsClear;
    s.slotsClear = (async () => {
      await last;
      await e.running.instance.kill();
      clearSlot(memory, e.prepared, (await e.running.instance.exited).heapTop ?? 0);
    })();
    return s.slotsClear;
  }

  /**
   * The exec path for a QEMU started early: it gets the exec at once (the
   * fds, the device state) and goes on from its CPR state. The old
   * instance ends beside it, and its slot is cleared once the update is
   * over. If the new QEMU does not run the VM, the old build takes it back
   * from the same state, as in replace().
   */
  private async replaceEarly(s: S, u: Update, req: ExecRequest, early: EarlyStart): Promise<void> {
    const t0 = Math.max(u.t0, s.stoppedAt ?? 0);
    const old = s.prepared!;
    const oldRunning = s.running;
    const memory = s.memory!;
    const name = early.prepared.build.name;
    const files = execFiles(req);
    const saved = saveFiles(memory, req.open);
    this.port.log(`[live-update] exec ${name}: handed to the QEMU started early, ${req.open.length} memfds open (fds ${req.open.map((o) => o.fd).join(',')}), state ${Object.values(req.files).map((b) => b.length).join('+')} bytes`);
    u.early = null;
    early.running.instance.handOver!({ env: req.env, open: req.open, files: this.handed(files) });
    s.running = early.running;
    if (this.faults().includes('kill-new-instance')) {
      this.port.log('[live-update] fault injected: ending the new QEMU right after the exec was handed over');
      void early.running.instance.kill();
    }
    // The old instance ends once the new QEMU ran the VM or failed to
    // (sharing the CPU with the new one's start cost ~20 ms of pause);
    // `gone` gives its heap top then.
    let settled!: () => void;
    const newSettled = new Promise<void>((r) => (settled = r));
    const gone = (async () => {
      await newSettled;
      const ended = await this.endThreads(u, oldRunning);
      await this.retire(u, oldRunning);
      return req.heapTop && ended.heapTop ? Math.max(req.heapTop, ended.heapTop) : 0;
    })();
    const last = s.slotsClear;
    s.slotsClear = (async () => {
      const [top, outcome] = await Promise.all([gone, u.outcome, last]);
      // After a fallback the old build runs in that slot again.
      if (outcome.kind === 'updated') clearSlot(memory, old, top);
    })();
    try {
      const { monitorAt, runningAt } = await waitRunning(early.running, this.attemptMs, name).finally(() => settled());
      const r = (x: number): number => Math.max(0, Math.round(x * 10) / 10);
      const result: LiveUpdateResult = {
        pauseMs: Math.round(runningAt - t0),
        from: old.build.name,
        to: name,
        route: 'cpr-exec',
        startedEarly: true,
        phases: {
          stateSaveMs: r(req.at - t0),
          teardownMs: 0,
          clearMs: 0,
          instantiateMs: 0,
          qemuInitMs: r(Math.min(monitorAt, runningAt) - req.at),
          stateLoadMs: r(runningAt - monitorAt),
        },
      };
      u.end({ kind: 'updated', result, prepared: early.prepared, argv: withQmpConsole(req.argv.slice(1)) });
    } catch (e) {
      await this.giveBack(s, u, old, name, message(e), async () => {
        // The old instance gone and its slot clear; restartOld() ends
        // the new one and clears what it dirtied.
        clearSlot(memory, old, await gone);
        await this.restartOld(s, u, old, req, files, parseEnv(req.env), saved);
      });
    }
  }

  /** The exec path proper: old instance out, new one in, or the old one back. */
  private async replace(s: S, u: Update, req: ExecRequest, name: string): Promise<void> {
    const early = u.early;
    if (early) {
      if (name === early.prepared.build.name && sameStrings(req.argv, early.command)) return this.replaceEarly(s, u, req, early);
      this.port.log(`[live-update] the exec is not the one ${early.prepared.build.name} was started for; starting ${name} at the exec`);
      await this.discardEarly(s, u);
    }
    const t0 = Math.max(u.t0, s.stoppedAt ?? 0);
    const old = s.prepared!;
    const oldRunning = s.running;
    const files = execFiles(req);
    const env = parseEnv(req.env);
    const memory = s.memory!;
    const saved = saveFiles(memory, req.open);
    this.port.log(`[live-update] exec ${name}: ${req.open.length} memfds open (fds ${req.open.map((o) => o.fd).join(',')}), heap top ${(req.heapTop / 2 ** 20).toFixed(1)} MiB, state ${Object.values(req.files).map((b) => b.length).join('+')} bytes`);
    try {
      // Usually compiled already (liveUpdate() prepares first; a typed
      // cpr-exec-command line starts preparing when it is seen).
      const prepared = await this.port.prepare(s, name);
      if (prepared.layoutProblem) throw new Error(prepared.layoutProblem);
      // The heap top at exec, or later if QEMU's other threads grew it
      // before they stopped, plus a margin for a last allocation. The
      // clear runs while the old instance settles.
      const ended = await this.endThreads(u, oldRunning);
      const threadsEnded = wallClock();
      clearOldHeap(memory, req.heapTop && ended.heapTop ? Math.max(req.heapTop, ended.heapTop) : 0, slotOf(old));
      // The new build's slot, if another, was cleared after its last use.
      await s.slotsClear;
      const cleared = wallClock();
      // An inert old instance (every thread ended, its runtime quiet) is
      // torn down beside the new one's start; any other, before it.
      const retired = this.retire(u, oldRunning);
      const teardown: Teardown = { threadsEnded, cleared, gone: ended.inert ? cleared : await retired };
      const argv = withQmpConsole(req.argv.slice(1));
      const start = (): Promise<StartTimes> =>
        this.start(s, { prepared, argv, memory, env, adopt: req.open, files: { ...s.guestFiles, ...this.handed(files) } }, this.attemptMs, true);
      let times: StartTimes;
      try {
        times = await start();
      } catch (e) {
        // Seen rarely: the new QEMU starts and then never runs the VM.
        // Start the same build once more from the same state.
        this.port.log(`[live-update] ${prepared.build.name} did not run the VM (${message(e)}); starting it again`);
        await this.clearAfter(s, u, saved);
        times = await start();
      }
      const result: LiveUpdateResult = {
        pauseMs: Math.round(times.runningAt - t0),
        from: old.build.name,
        to: prepared.build.name,
        route: 'cpr-exec',
        startedEarly: false,
        phases: phasesFrom(t0, req.at, teardown, times),
      };
      u.end({ kind: 'updated', result, prepared, argv });
    } catch (e) {
      await this.giveBack(s, u, old, name, message(e), () => this.restartOld(s, u, old, req, files, env, saved));
    }
  }

  /** After the VM stopped, the new build failed: the old build takes the
   * VM back from the same state (`restart`), or the VM is lost. */
  private async giveBack(s: S, u: Update, old: PreparedBuild, name: string, why: string, restart: () => Promise<void>): Promise<void> {
    this.port.log(`live update to ${name} failed: ${why}; restarting ${old.build.name} from the same state`);
    try {
      await restart();
      u.end({ kind: 'restored', error: new PlaygroundError('live-update-failed', `live update ${old.build.name} → ${name} failed: ${why}. The VM runs again on ${old.build.name}`) });
    } catch (e) {
      u.end({
        kind: 'lost',
        error: new PlaygroundError('live-update-failed', `live update ${old.build.name} → ${name} failed (${why}), and restarting ${old.build.name} failed too: ${message(e)}`),
      });
    }
  }

  /** The device state as the new QEMU gets it (truncated under that fault). */
  private handed(files: Record<string, Uint8Array>): Record<string, Uint8Array> {
    return this.faults().includes('truncate-state') ? truncated(files) : files;
  }

  /** QEMU asked for a build that does not exist: QEMU restarts the VM itself. */
  onExecRefused(s: S, argv: string[], reason: string): void {
    s.update?.end({
      kind: 'restored',
      error: new PlaygroundError('live-update-failed', `live update to ${execName(argv[0] ?? '')} failed: ${reason}. QEMU restarted the VM on ${s.prepared?.build.name}`),
    });
  }

  /**
   * The session's QEMU ended. Returns true when that ends the session (the
   * host reports QEMU's exit and ends a pending update with it), false
   * when a pending update handles it: an instance it retires, or one it is
   * starting (it falls back to the old build).
   */
  endsSession(s: S, instance: QemuInstanceLike): boolean {
    const u = s.update;
    return !u || (!u.retiring.has(instance) && u.phase !== 'replacing');
  }

  /** The benchmark baseline: RAM goes through a file and a fresh Memory. */
  async viaCopy(s: S, prepared: PreparedBuild, timeoutMs: number): Promise<LiveUpdateResult> {
    const from = s.prepared!;
    const running = s.running;
    if (!running) throw new PlaygroundError('bad-state', 'QEMU is not running');
    const u = this.begin(s, 'copy', prepared.build.name, wallClock());
    const refused = (why: string): UpdateOutcome => ({
      kind: 'refused',
      error: new PlaygroundError('live-update-refused', `copy update ${from.build.name} → ${prepared.build.name} refused: ${why}`),
    });
    let state: Uint8Array;
    try {
      // Paused first: the whole state, RAM included, is written in the pause.
      state = await saveState(running, COPY_FILE, timeoutMs, true);
    } catch (e) {
      u.end(refused(message(e)));
      return resultOf(u);
    }
    const saved = wallClock();
    u.phase = 'replacing';
    this.port.pausing(s);
    try {
      const tornDown = await this.retire(u, running);
      const memory = s.memory ? this.port.createMemory() : null;
      s.memory = memory;
      const cleared = wallClock();
      // The incoming side reports the end of the load (MIGRATION events)
      // only with the events capability.
      const argv = [...s.baseArgv, '-global', 'migration.x-events=on', '-incoming', `file:${COPY_FILE}`];
      const times = await this.start(s, { prepared, argv, memory, files: { ...s.guestFiles, [COPY_FILE]: state } }, timeoutMs);
      const result: LiveUpdateResult = {
        pauseMs: Math.round(times.runningAt - u.t0),
        from: from.build.name,
        to: prepared.build.name,
        route: 'copy',
        startedEarly: false,
        phases: phasesFrom(u.t0, saved, { threadsEnded: tornDown, cleared, gone: cleared }, times),
      };
      u.end({ kind: 'updated', result, prepared, argv: s.baseArgv });
    } catch (e) {
      u.end({ kind: 'lost', error: new PlaygroundError('live-update-failed', `copy update ${from.build.name} → ${prepared.build.name} failed after the old QEMU ended: ${message(e)}`) });
    }
    return resultOf(u);
  }

  /** Ends a pending update whose migration failed (QEMU runs the VM on). */
  private watchMigration(s: S, u: Update, qmp: QmpClient): void {
    const off = qmp.onEvent((e) => {
      if (e.kind !== 'migration' || e.status !== 'failed' || u.phase !== 'migrating') return;
      void migrationError(qmp).then((why) =>
        u.end({ kind: 'restored', error: new PlaygroundError('live-update-failed', `live update to ${u.target} failed: QEMU says: ${why}. The VM runs on ${s.prepared?.build.name}`) }),
      );
    });
    u.onCleanup(off);
  }

  /** Gives up an update before exec: cancel the migration, make sure the
   * old QEMU runs the VM; if it cannot, the session is lost. */
  private async abandon(s: S, u: Update, why: string): Promise<void> {
    const qmp = s.running?.qmp;
    const error = (kind: 'restored' | 'lost', more: string): UpdateOutcome => ({
      kind,
      error: new PlaygroundError('live-update-failed', `live update to ${u.target} gave up: ${why}; ${more}`),
    });
    try {
      if (!qmp) throw new Error('QEMU is gone');
      await qmp.execute('migrate_cancel', undefined, 5000).catch(() => undefined);
      // Too late to cancel: the state is saved and QEMU is exec'ing; the
      // exec path takes the update over from here.
      const info = await qmp.execute<{ status?: string }>('query-migrate', undefined, 5000).catch(() => ({ status: undefined }));
      if (info.status === 'completed' || u.phase === 'replacing') return;
      const st = await qmp.status(5000);
      if (!st.running) await qmp.execute('cont', undefined, 5000);
      u.end(error('restored', `the VM runs on ${s.prepared?.build.name}`));
    } catch (e) {
      u.end(error('lost', `QEMU does not answer (${message(e)})`));
    }
  }

  /** Starts an instance and waits until its VM runs; `target`: a new
   * build of an update (faults apply to it, not to a fallback). */
  private async start(s: S, req: StartRequest, timeoutMs: number, target = false): Promise<StartTimes> {
    let runtimeReadyAt = 0;
    const launchedAt = wallClock();
    const running = await this.port.launch(s, req, (at) => (runtimeReadyAt = at));
    if (target && this.faults().includes('kill-new-instance')) {
      this.port.log('[live-update] fault injected: ending the new QEMU right after its launch');
      void running.instance.kill();
    }
    const { monitorAt, runningAt } = await waitRunning(running, timeoutMs, req.prepared.build.name);
    return { runtimeReadyAt: runtimeReadyAt || launchedAt, monitorAt, runningAt };
  }

  /** Ends an instance's threads on purpose (retire() ends the rest). */
  private async endThreads(u: Update, r: Running | null): Promise<EndedThreads> {
    if (!r) return { heapTop: 0, inert: true };
    u.retiring.add(r.instance);
    if (r.instance.endThreads) return r.instance.endThreads();
    await r.instance.kill();
    return { heapTop: (await r.instance.exited).heapTop ?? 0, inert: true };
  }

  /** Ends an instance on purpose; returns when (wall clock). */
  private async retire(u: Update, r: Running | null): Promise<number> {
    if (r) {
      u.retiring.add(r.instance);
      await r.instance.kill();
    }
    return wallClock();
  }

  /** After a failed instance: end it, clear what it may have dirtied,
   * put the preserved memfds back as they were at exec. */
  private async clearAfter(s: S, u: Update, saved: SavedFiles): Promise<void> {
    const r = s.running;
    let heapTop = 0;
    if (r) {
      await this.retire(u, r);
      heapTop = (await r.instance.exited).heapTop ?? 0;
    }
    clearOldHeap(s.memory!, heapTop);
    restoreFiles(s.memory!, saved);
  }

  private async restartOld(
    s: S,
    u: Update,
    old: PreparedBuild,
    req: ExecRequest,
    files: Record<string, Uint8Array>,
    env: Record<string, string>,
    saved: SavedFiles,
  ): Promise<void> {
    // A failed new instance (or the old one, if preparing failed before
    // the teardown): end it and clear what it dirtied.
    await this.clearAfter(s, u, saved);
    const stateFile = Object.keys(files)[0] ?? STATE_FILE;
    const start = (): Promise<StartTimes> =>
      this.start(
        s,
        { prepared: old, argv: [...s.baseArgv, '-incoming', `file:${stateFile}`], memory: s.memory, env, adopt: req.open, files: { ...s.guestFiles, ...files } },
        this.attemptMs,
      );
    try {
      await start();
    } catch (e) {
      // The rare start that never runs the VM (see replace()) hits the
      // fallback too: once more from the same state before the VM is lost.
      this.port.log(`[live-update] ${old.build.name} did not take the VM back (${message(e)}); starting it again`);
      await this.clearAfter(s, u, saved);
      await start();
    }
  }
}
