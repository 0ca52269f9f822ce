// Runs in the QEMU host worker; no DOM.
//
// Live update: QEMU's cpr-exec in the browser. QEMU stops the VM, writes
// its device state to a file, records its memfds (guest RAM) in the CPR
// state memfd and exec's `cpr-exec-command`. Here exec reaches the host as
// an ExecRequest from the instance worker (wasm/emscripten/cpr-exec.js →
// worker/qemu/instance.ts), and the host:
//   1. ends the old instance worker (its runtime and all QEMU's threads),
//   2. clears the Memory below the old heap top (worker/qemu/memory.ts),
//   3. starts the build argv[0] names, already compiled, on the same
//      Memory, with QEMU's environment, the memfds reopened under the same
//      fds (worker/qemu/memfd.ts) and the state file carried over,
//   4. waits until QEMU says the VM runs.
// If anything after the VM stopped fails, the old build is started the same
// way from the same state (QEMU itself restarts the VM when exec fails
// before that point). The same flow serves liveUpdate() and the commands
// typed into the monitor. Route 'copy' is the benchmark baseline: a normal
// migration to a file, a fresh instance on a fresh Memory.
import { PlaygroundError, type LiveUpdateResult, type LiveUpdateRoute, type PausePhases } from './api';
import type { ResolvedBuild } from './builds';
import type { QemuInstanceLike } from './host';
import type { ExecRequest } from './qemu/instance';
import type { OpenMemfd } from './qemu/memfd';
import { clearBelow, HEAP_LIMIT, RegionTable, type RegionEntry } from './qemu/memory';

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

/** A build ready to start: compiled, its live-update support known. */
export interface PreparedBuild {
  build: ResolvedBuild;
  /** Where the glue finds the wasm (pthreads get the compiled module). */
  wasmUrl: string;
  module?: WebAssembly.Module;
  /** Why it cannot take over a running guest's RAM, or undefined. */
  layoutProblem: string | undefined;
}

export interface PendingUpdate {
  route: LiveUpdateRoute;
  target: string;
  /** Wall clock ms when the pause began (`migrate` sent or typed). */
  t0: number;
  promise: Promise<LiveUpdateResult>;
  resolve(r: LiveUpdateResult): void;
  reject(e: unknown): void;
}

/** What a session needs for live updates (the host's Session extends it). */
export interface UpdateSession {
  memory: WebAssembly.Memory | null;
  prepared: PreparedBuild | null;
  /** The guest's QEMU arguments (no -incoming), for the next build. */
  baseArgv: string[];
  guestFiles: Record<string, Uint8Array>;
  update: PendingUpdate | null;
  /** Wall clock ms when a `migrate` line was seen in the monitor. */
  migrateSeenAt: number | null;
}

/** Timestamps of one instance start, for the phases. */
export interface StartTimes {
  launchedAt: number;
  runtimeReadyAt: number;
  monitorAt: number;
  runningAt: number;
}

export interface StartRequest {
  prepared: PreparedBuild;
  argv: string[];
  memory: WebAssembly.Memory | null;
  env?: Record<string, string>;
  adopt?: OpenMemfd[];
  files: Record<string, Uint8Array>;
  timeoutMs: number;
}

/** What the live-update flow needs from the host. */
export interface UpdatePort<S extends UpdateSession> {
  /** Starts an instance for the session (it becomes s.instance) and
   * resolves once the VM runs; rejects if it ends first. */
  start(s: S, req: StartRequest): Promise<StartTimes>;
  instance(s: S): QemuInstanceLike | null;
  monitor(s: S, command: string, timeoutMs?: number): Promise<string>;
  prepare(s: S, target: string): Promise<PreparedBuild>;
  /** Starts the next instance's worker and threads ahead of the pause. */
  prewarm(s: S, prepared: PreparedBuild): void;
  createMemory(): WebAssembly.Memory;
  updating(s: S): void;
  updated(s: S, prepared: PreparedBuild, argv: string[], result: LiveUpdateResult): void;
  /** The old build runs the VM again after a failed update. */
  restored(s: S): void;
  /** The fallback failed too: the session is lost. */
  lost(s: S, error: PlaygroundError): void;
  log(line: string): void;
  /** Progress of an update, for debugging (the worker's console). */
  trace(line: string): void;
}

export const STATE_FILE = '/vm.state';
/** Cleared above the old heap top, for allocations that raced the end. */
export const CLEAR_MARGIN = 16 * 1024 ** 2;
/** One attempt of a new instance to run the VM (normally < 1 s). */
export const ATTEMPT_TIMEOUT_MS = 20_000;
export const COPY_FILE = '/vm.copy';
export const DEFAULT_UPDATE_TIMEOUT_MS = 120_000;

export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/** Quotes one argument for g_shell_parse_argv (cpr-exec-command). */
export function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The value of `migrate_set_parameter cpr-exec-command` for a target. */
export function cprExecCommand(name: string, baseArgv: readonly string[], stateFile = STATE_FILE): string {
  return [name, ...baseArgv, '-incoming', `file:${stateFile}`].map(shellQuote).join(' ');
}

/** QEMU's error in an HMP command's output, or undefined. */
export function hmpError(output: string): string | undefined {
  const m = /^(?:Error: |.*?: )?(.*(?:[Ee]rror|cannot|not supported|blocked|Invalid parameter|[Uu]nknown|failed).*)$/m.exec(output.trim());
  if (!output.trim()) return undefined;
  return m ? m[0].replace(/^Error: /, '') : undefined;
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

/** The build name in cpr-exec-command's argv[0] (a path's last part). */
export function execName(argv0: string): string {
  return argv0.split('/').pop() ?? argv0;
}

/** A file path as the new instance's FS needs it (cwd is /). */
export function absolute(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

function phasesFrom(t0: number, execAt: number, tornDown: number, cleared: number, t: StartTimes): PausePhases {
  const r = (x: number): number => Math.max(0, Math.round(x * 10) / 10);
  return {
    stateSaveMs: r(execAt - t0),
    teardownMs: r(tornDown - execAt),
    clearMs: r(cleared - tornDown),
    instantiateMs: r(t.runtimeReadyAt - cleared),
    qemuInitMs: r(t.monitorAt - t.runtimeReadyAt),
    stateLoadMs: r(t.runningAt - t.monitorAt),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: () => PlaygroundError): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(what()), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

export class LiveUpdates<S extends UpdateSession> {
  constructor(private readonly port: UpdatePort<S>) {}

  /** A pending update record; liveUpdate() and exec both find it. */
  begin(s: S, route: LiveUpdateRoute, target: string, t0: number): PendingUpdate {
    let resolve!: (r: LiveUpdateResult) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<LiveUpdateResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined);
    const u: PendingUpdate = { route, target, t0, promise, resolve, reject };
    s.update = u;
    return u;
  }

  /** liveUpdate(target) on the cpr-exec route: the monitor commands a
   * user would type, then the exec that QEMU makes. */
  async viaCprExec(s: S, prepared: PreparedBuild, timeoutMs: number): Promise<LiveUpdateResult> {
    const from = s.prepared?.build.name ?? '?';
    const refuse = (why: string): PlaygroundError => {
      s.update = null;
      return new PlaygroundError('live-update-refused', `live update ${from} → ${prepared.build.name} refused: ${why}; the guest runs on ${from}, untouched`);
    };
    if (!s.memory || s.prepared?.layoutProblem) {
      throw refuse(s.prepared?.layoutProblem ?? `${from} does not run on a shared Memory`);
    }
    if (prepared.layoutProblem) throw refuse(prepared.layoutProblem);
    this.port.prewarm(s, prepared);
    const u = this.begin(s, 'cpr-exec', prepared.build.name, wallClock());
    for (const cmd of ['migrate_set_parameter mode cpr-exec', `migrate_set_parameter cpr-exec-command ${cprExecCommand(prepared.build.name, s.baseArgv)}`]) {
      const err = hmpError(await this.port.monitor(s, cmd));
      if (err) throw refuse(`QEMU says: ${err}`);
    }
    u.t0 = wallClock();
    const out = await this.port.monitor(s, `migrate -d file:${STATE_FILE}`, timeoutMs);
    const err = hmpError(out);
    if (err && s.update === u) throw refuse(`QEMU says: ${err}`);
    return withTimeout(u.promise, timeoutMs, () => new PlaygroundError('live-update-failed', `live update to ${prepared.build.name} did not finish within ${timeoutMs} ms`));
  }

  /** QEMU exec'd: replace the instance (typed or from liveUpdate()). */
  async onExec(s: S, req: ExecRequest, timeoutMs = DEFAULT_UPDATE_TIMEOUT_MS): Promise<void> {
    const name = execName(req.argv[0] ?? '');
    // Typed: the pause began when the `migrate` line was seen (or at exec
    // if its echo came later).
    const u = s.update ?? this.begin(s, 'cpr-exec', name, Math.min(s.migrateSeenAt ?? req.at, req.at));
    const old = s.prepared!;
    this.port.updating(s);
    const files: Record<string, Uint8Array> = {};
    for (const [path, bytes] of Object.entries(req.files)) files[absolute(path)] = bytes;
    const env = parseEnv(req.env);
    const memory = s.memory!;
    const saved = saveFiles(memory, req.open);
    this.port.trace(`exec ${name}: ${req.open.length} memfds open (fds ${req.open.map((o) => o.fd).join(',')}), heap top ${(req.heapTop / 2 ** 20).toFixed(1)} MiB, state ${Object.values(req.files).map((b) => b.length).join('+')} bytes`);
    try {
      // Usually compiled already (liveUpdate() prepares first; a typed
      // cpr-exec-command line starts preparing when it is seen).
      const prepared = await this.port.prepare(s, name);
      if (prepared.layoutProblem) throw new Error(prepared.layoutProblem);
      const oldInstance = this.port.instance(s);
      const tornDown = await this.teardown(s);
      // The heap top at exec, or later if QEMU's other threads grew it
      // before they stopped, plus a margin for a last allocation.
      const exitTop = (await oldInstance?.exited)?.heapTop ?? 0;
      clearBelow(memory, req.heapTop && exitTop ? Math.max(req.heapTop, exitTop) + CLEAR_MARGIN : HEAP_LIMIT);
      const cleared = wallClock();
      this.port.trace(`old instance ended, memory cleared; starting ${prepared.build.name}`);
      const argv = req.argv.slice(1);
      const start = (): Promise<StartTimes> =>
        this.port.start(s, { prepared, argv, memory, env, adopt: req.open, files: { ...s.guestFiles, ...files }, timeoutMs: attemptMs });
      const attemptMs = Math.min(ATTEMPT_TIMEOUT_MS, timeoutMs / 3);
      let times: StartTimes;
      try {
        times = await start();
      } catch (e) {
        // Seen rarely: the new QEMU prints its monitor banner and then
        // never runs the VM. Start the same build once more from the same
        // state before giving up on it.
        this.port.trace(`${prepared.build.name} did not run the VM (${e instanceof Error ? e.message : String(e)}); starting it again`);
        await this.clearAfter(s, saved);
        times = await start();
      }
      const result: LiveUpdateResult = {
        pauseMs: Math.round(times.runningAt - u.t0),
        from: old.build.name,
        to: prepared.build.name,
        route: 'cpr-exec',
        phases: phasesFrom(u.t0, req.at, tornDown, cleared, times),
      };
      this.port.updated(s, prepared, argv, result);
      s.update = null;
      u.resolve(result);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.port.log(`live update to ${name} failed: ${why}; restarting ${old.build.name} from the same state`);
      try {
        await this.restartOld(s, old, req, files, env, saved, timeoutMs);
        s.update = null;
        this.port.restored(s);
        u.reject(new PlaygroundError('live-update-failed', `live update ${old.build.name} → ${name} failed: ${why}. The VM runs again on ${old.build.name}`));
      } catch (e2) {
        const lost = new PlaygroundError(
          'live-update-failed',
          `live update ${old.build.name} → ${name} failed (${why}), and restarting ${old.build.name} failed too: ${e2 instanceof Error ? e2.message : String(e2)}`,
        );
        s.update = null;
        u.reject(lost);
        this.port.lost(s, lost);
      }
    }
  }

  /** QEMU asked for a build that does not exist: QEMU restarts the VM itself. */
  onExecRefused(s: S, argv: string[], reason: string): void {
    const u = s.update;
    if (!u) return;
    s.update = null;
    u.reject(new PlaygroundError('live-update-failed', `live update to ${execName(argv[0] ?? '')} failed: ${reason}. QEMU restarted the VM on ${s.prepared?.build.name}`));
  }

  /** The benchmark baseline: RAM goes through a file and a fresh Memory. */
  async viaCopy(s: S, prepared: PreparedBuild, timeoutMs: number): Promise<LiveUpdateResult> {
    const from = s.prepared!;
    const u = this.begin(s, 'copy', prepared.build.name, wallClock());
    const fail = (why: string): PlaygroundError => {
      s.update = null;
      return new PlaygroundError('live-update-refused', `copy update ${from.build.name} → ${prepared.build.name} refused: ${why}`);
    };
    // Paused first: the whole state, RAM included, is written in the pause.
    await this.port.monitor(s, 'stop');
    for (const cmd of ['migrate_set_parameter mode normal', `migrate file:${COPY_FILE}`]) {
      const err = hmpError(await this.port.monitor(s, cmd, timeoutMs));
      if (err) {
        await this.port.monitor(s, 'cont').catch(() => undefined);
        throw fail(`QEMU says: ${err}`);
      }
    }
    const state = await this.port.instance(s)?.readFile?.(COPY_FILE);
    if (!state || state.length === 0) {
      await this.port.monitor(s, 'cont').catch(() => undefined);
      throw fail(`QEMU wrote no ${COPY_FILE}`);
    }
    const saved = wallClock();
    this.port.updating(s);
    const tornDown = await this.teardown(s);
    const memory = s.memory ? this.port.createMemory() : null;
    s.memory = memory;
    const cleared = wallClock();
    const argv = [...s.baseArgv, '-incoming', `file:${COPY_FILE}`];
    const times = await this.port.start(s, { prepared, argv, memory, files: { ...s.guestFiles, [COPY_FILE]: state }, timeoutMs: timeoutMs });
    const result: LiveUpdateResult = {
      pauseMs: Math.round(times.runningAt - u.t0),
      from: from.build.name,
      to: prepared.build.name,
      route: 'copy',
      phases: phasesFrom(u.t0, saved, tornDown, cleared, times),
    };
    this.port.updated(s, prepared, argv, result);
    s.update = null;
    u.resolve(result);
    return result;
  }

  /** Ends the current instance; returns when (wall clock). */
  private async teardown(s: S): Promise<number> {
    await this.port.instance(s)?.kill();
    return wallClock();
  }

  /** After a failed instance: end it, clear what it may have dirtied,
   * put the preserved memfds back as they were at exec. */
  private async clearAfter(s: S, saved: SavedFiles): Promise<void> {
    const inst = this.port.instance(s);
    let top = HEAP_LIMIT;
    if (inst) {
      await inst.kill();
      const exit = await inst.exited;
      top = exit.heapTop ? exit.heapTop + CLEAR_MARGIN : HEAP_LIMIT;
    }
    clearBelow(s.memory!, top);
    restoreFiles(s.memory!, saved);
  }

  private async restartOld(
    s: S,
    old: PreparedBuild,
    req: ExecRequest,
    files: Record<string, Uint8Array>,
    env: Record<string, string>,
    saved: SavedFiles,
    timeoutMs: number,
  ): Promise<void> {
    const inst = this.port.instance(s);
    let top = HEAP_LIMIT;
    if (inst) {
      // A failed new instance: clear what it dirtied (all of it if unknown).
      const exit = await Promise.race([inst.exited, inst.kill().then(() => inst.exited)]);
      top = exit.heapTop || HEAP_LIMIT;
    }
    clearBelow(s.memory!, top);
    restoreFiles(s.memory!, saved);
    const stateFile = Object.keys(files)[0] ?? STATE_FILE;
    await this.port.start(s, {
      prepared: old,
      argv: [...s.baseArgv, '-incoming', `file:${stateFile}`],
      memory: s.memory,
      env,
      adopt: req.open,
      files: { ...s.guestFiles, ...files },
      // Within the caller's overall timeout, after two attempts of the target.
      timeoutMs: Math.min(timeoutMs / 3, 2 * ATTEMPT_TIMEOUT_MS),
    });
  }
}
