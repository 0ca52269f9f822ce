// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The worker's side of the contract: owns at most one QEMU instance and
// drives its lifecycle (load → start → boot → running → stopped), turning
// every failure into a PlaygroundError with a code. QEMU itself is reached
// through a QemuBackend, so tests can drive this class with a fake QEMU and
// the real worker plugs in worker/qemu/.
import {
  DEFAULT_MONITOR_TIMEOUT_MS,
  GUEST_READY_LINE,
  PlaygroundError,
  toErrorInfo,
  type BootOptions,
  type BuildInfo,
  type GuestName,
  type LiveUpdateOptions,
  type LiveUpdateResult,
  type Progress,
  type QemuWorkerApi,
  type Status,
  type WorkerConfig,
  type WorkerListener,
} from './api';
import { BuildRegistry, parseManifest, type ResolvedBuild } from './builds';
import { checkWasmMagic, download, type FetchLike } from './download';
import { buildLayoutProblem } from './qemu/memory';
import {
  DEFAULT_UPDATE_TIMEOUT_MS,
  execName,
  LiveUpdates,
  wallClock,
  type PreparedBuild,
  type StartRequest,
  type StartTimes,
  type UpdateSession,
} from './live-update';
import { MonitorChannel } from './monitor';
import { resolveBootOptions, type ResolvedBootOptions } from './options';
import type { ExecRequest } from './qemu/instance';
import type { OpenMemfd } from './qemu/memfd';
import { concatBytes } from './qemu/bytes';

/** What the host needs from one running QEMU (worker/qemu/instance.ts). */
export interface QemuInstanceLike {
  writeSerial(bytes: Uint8Array): void;
  writeMonitor(bytes: Uint8Array): void;
  /** heapTop: how far the instance's heap reached, when it can tell. */
  readonly exited: Promise<{ status: number; message?: string; heapTop?: number }>;
  kill(): Promise<void>;
  /** The top of the instance's heap (live-update builds). */
  heapTop?(): Promise<number>;
  /** A file of QEMU's file system, or null. */
  readFile?(path: string): Promise<Uint8Array | null>;
}

export interface LaunchRequest {
  jsUrl: string;
  wasmUrl: string;
  argv: string[];
  files: Record<string, Uint8Array>;
  onSerial(bytes: Uint8Array): void;
  onMonitor(bytes: Uint8Array): void;
  onLog(line: string): void;
  /** Live update: the compiled build, the shared Memory, QEMU's
   * environment, the memfds to reopen, the names QEMU may exec. */
  wasmModule?: WebAssembly.Module;
  memory?: WebAssembly.Memory;
  env?: Record<string, string>;
  adopt?: OpenMemfd[];
  execNames?: string[];
  onExec?(request: ExecRequest): void;
  onExecRefused?(argv: string[], reason: string): void;
  onRuntimeReady?(at: number): void;
  /** A pre-started instance for this build (backend.prewarm), if any. */
  spare?: SpareLike;
}

/** An instance worker started ahead of a live update (opaque to the host). */
export interface SpareLike {
  readonly jsUrl: string;
  dispose(): void;
}

export interface GuestPlan {
  /** QEMU arguments after the program name. */
  argv: string[];
  /** Artifact-relative path → path inside QEMU's file system. */
  files: Record<string, string>;
}

/** The low-level QEMU module, as the host uses it. */
export interface QemuBackend {
  launch(request: LaunchRequest): Promise<QemuInstanceLike>;
  /** `liveUpdate`: the build can live-update, so guest RAM is shared. */
  plan(guest: GuestName, ramMiB: number, liveUpdate: boolean): GuestPlan;
  /** A fresh shared Memory with the live-update layout (worker/qemu/memory.ts). */
  createMemory?(): WebAssembly.Memory;
  /** Compiles a build's wasm (before any pause needs it). */
  compile?(bytes: Uint8Array): Promise<WebAssembly.Module>;
  /** Starts an instance worker for a build ahead of a live update. */
  prewarm?(jsUrl: string): SpareLike;
}

/** The page's listener as seen through Comlink: calls may return promises. */
export type ListenerLike = {
  [K in keyof WorkerListener]: (...args: Parameters<WorkerListener[K]>) => unknown;
};

export interface HostEnvironment {
  backend: QemuBackend;
  fetch?: FetchLike;
  /** Checked before every boot: false means no SharedArrayBuffer. */
  isolated(): boolean;
  /** Makes a URL QEMU can load the fetched wasm from (a blob: URL in a worker). */
  wasmUrl(bytes: Uint8Array): { url: string; revoke(): void };
}

const LOG_LINES = 40;
/** What the Emscripten glue logs when one of QEMU's threads traps. */
const CRASH = /worker sent an error!|Uncaught RuntimeError/;
/** What Emscripten says when the wasm itself cannot be used. */
const LOAD_FAILURE = /CompileError|LinkError|failed to asynchronously prepare wasm|fetching of the wasm failed|WebAssembly\.(instantiate|compile)/;
const SERIAL_FLUSH_MS = 8;

/** Everything that belongs to one boot; replaced as a whole. A live
 * update replaces its instance and build, not the session. */
interface Session extends UpdateSession {
  id: number;
  instance: QemuInstanceLike | null;
  monitor: MonitorChannel;
  options: ResolvedBootOptions;
  build: ResolvedBuild;
  argv: string[];
  /** Recent serial text, to find the ready line across chunk boundaries. */
  serialTail: string;
  serialDecoder: TextDecoder;
  /** Resolved when the ready line shows up while booting. */
  onReady: (() => void) | null;
  revokeWasm(): void;
  ended: boolean;
  /** Set when QEMU crashed in a way that does not end it by itself. */
  crashed: string | null;
  /** Rejects once QEMU has ended or crashed; waits race against it. */
  failure: Promise<never>;
  fail(e: PlaygroundError): void;
  /** Wall clock ms of the current instance's first monitor output. */
  monitorSeenAt: number | null;
  /** The next instance, started ahead of a live update. */
  spare: SpareLike | null;
}

/** "qemu-system-arm" for "qemu-system-arm@v2". */
function programOf(name: string): string {
  return name.replace(/@.*$/, '');
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

function failureSignal(): { failure: Promise<never>; fail(e: PlaygroundError): void } {
  let fail!: (e: PlaygroundError) => void;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => undefined); // observed by whoever races it
  return { failure, fail };
}

export class QemuHost implements QemuWorkerApi {
  private config: WorkerConfig | null = null;
  private listener: ListenerLike | null = null;
  private registry: BuildRegistry | null = null;
  private session: Session | null = null;
  private nextId = 1;
  /** The boot in progress; stop() or a newer boot clears it, cancelling it. */
  private activeBoot = 0;
  private lastCrashAt = -Infinity;
  private state: Status = { seq: 0, state: 'idle', guest: null, build: null, argv: [], ramMiB: null, error: null };
  private readonly logs: string[] = [];
  private serialOut: Uint8Array[] = [];
  private serialTimer: ReturnType<typeof setTimeout> | null = null;
  /** Builds downloaded and compiled, by full name. */
  private readonly prepared = new Map<string, Promise<PreparedBuild>>();
  private readonly updates: LiveUpdates<Session>;

  constructor(private readonly env: HostEnvironment) {
    this.updates = new LiveUpdates<Session>({
      start: (s, req) => this.startInstance(s, req),
      instance: (s) => s.instance,
      monitor: (s, command, timeoutMs) => s.monitor.command(command, timeoutMs),
      prepare: (s, target) => this.prepareTarget(s, target),
      prewarm: (s, prepared) => this.prewarm(s, prepared),
      createMemory: () => this.createMemory(),
      updating: (s) => {
        if (s === this.session) this.setState({ state: 'updating' });
      },
      updated: (s, prepared, argv, result) => {
        s.prepared = prepared;
        s.build = prepared.build;
        s.argv = argv;
        if (s !== this.session) return;
        this.setState({ state: 'running', build: prepared.build.name, argv: [programOf(prepared.build.name), ...argv], error: null });
        this.call('liveUpdate', result);
      },
      restored: (s) => {
        if (s === this.session) this.setState({ state: 'running' });
      },
      lost: (s, error) => {
        if (s !== this.session) return;
        void this.stopSession().then(() => this.fail(error));
      },
      log: (line) => this.onLog(line, null),
      // To the page's log only, not into the 'QEMU said' of error messages.
      trace: (line) => this.call('log', `[live-update] ${line}`),
    });
  }

  /**
   * Replaces the running QEMU by build `target` while the guest runs on:
   * cpr-exec (guest RAM stays where it is) or, for benchmarks, 'copy'.
   * Everything that can fail before the VM stops (unknown build, download,
   * compile, a configuration QEMU will not live-update) is refused with the
   * guest untouched; a failure after that restarts the old build.
   */
  async liveUpdate(target: string, options: LiveUpdateOptions = {}): Promise<LiveUpdateResult> {
    const s = this.session;
    if (!s || !s.instance || s.ended || !['running', 'paused'].includes(this.state.state)) {
      throw new PlaygroundError('bad-state', `cannot live-update: the guest is ${this.state.state}; boot it first and wait until it runs`);
    }
    if (s.update) throw new PlaygroundError('bad-state', `a live update to ${s.update.target} is in progress`);
    if (typeof target !== 'string' || target === '') throw new PlaygroundError('bad-options', 'liveUpdate(target): target must be a build name such as "v2"');
    const route = options.route ?? 'cpr-exec';
    if (route !== 'cpr-exec' && route !== 'copy') {
      throw new PlaygroundError('bad-options', `unknown route ${JSON.stringify(route)}: use "cpr-exec" (default) or "copy"`);
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS;
    const build = (await this.loadRegistry()).resolve(s.options.guest, target);
    let prepared: PreparedBuild;
    try {
      prepared = await this.prepare(build);
    } catch (e) {
      throw new PlaygroundError('live-update-refused', `live update to ${build.name} refused: ${toErrorInfo(e).message}; the guest runs on ${s.build.name}, untouched`);
    }
    if (this.session !== s) throw new PlaygroundError('bad-state', 'QEMU was stopped while the build was prepared');
    return route === 'copy' ? this.updates.viaCopy(s, prepared, timeoutMs) : this.updates.viaCprExec(s, prepared, timeoutMs);
  }

  async init(config: WorkerConfig, listener: WorkerListener | ListenerLike): Promise<void> {
    if (!/\/$/.test(config.artifactsBase)) {
      throw new PlaygroundError('bad-options', `artifactsBase must end in "/", got ${config.artifactsBase}`);
    }
    this.config = config;
    this.listener = listener as ListenerLike;
    this.emitStatus();
  }

  async builds(): Promise<BuildInfo[]> {
    return (await this.loadRegistry()).list();
  }

  async status(): Promise<Status> {
    return this.snapshot();
  }

  async boot(options: BootOptions): Promise<Status> {
    if (!this.config) throw new PlaygroundError('bad-state', 'the worker is not initialised: call init() first');
    const resolved = resolveBootOptions(options);
    if (!this.env.isolated()) {
      throw this.fail(
        new PlaygroundError(
          'not-isolated',
          'the page is not cross-origin isolated, so QEMU cannot use SharedArrayBuffer: serve it with ' +
            'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp',
        ),
      );
    }
    const id = this.nextId++;
    this.activeBoot = id;
    await this.stopSession();
    this.logs.length = 0;
    try {
      return await this.bootSession(id, resolved);
    } catch (e) {
      // A boot cancelled by stop() or by a newer boot only reports that;
      // the state belongs to whoever cancelled it.
      if (this.activeBoot !== id) throw new PlaygroundError('bad-state', 'this boot was cancelled by stop() or by another boot');
      if (this.session?.id === id) await this.stopSession();
      throw this.fail(e);
    } finally {
      if (this.activeBoot === id) this.activeBoot = 0;
    }
  }

  async writeSerial(bytes: Uint8Array): Promise<void> {
    this.liveInstance().writeSerial(bytes);
  }

  async writeMonitor(bytes: Uint8Array): Promise<void> {
    this.liveInstance().writeMonitor(bytes);
  }

  async monitor(command: string, timeoutMs: number = DEFAULT_MONITOR_TIMEOUT_MS): Promise<string> {
    if (typeof command !== 'string') throw new PlaygroundError('bad-options', 'monitor(command): command must be a string');
    this.liveInstance();
    return this.session!.monitor.command(command, timeoutMs);
  }

  async stop(): Promise<Status> {
    this.activeBoot = 0;
    if (!this.session) {
      if (this.state.state !== 'idle') this.setState({ state: 'stopped', error: null });
      return this.snapshot();
    }
    this.setState({ state: 'stopping' });
    await this.stopSession();
    this.setState({ state: 'stopped', error: null });
    return this.snapshot();
  }

  async reset(): Promise<Status> {
    const s = this.session;
    if (!s || !s.instance || !['running', 'paused', 'booting'].includes(this.state.state)) {
      throw new PlaygroundError('bad-state', `cannot reset: the guest is ${this.state.state}; boot it first`);
    }
    const ready = this.waitForReady(s);
    this.setState({ state: 'booting', error: null });
    this.progress({ phase: 'boot', label: 'resetting the guest', loaded: 0, total: 0 });
    await s.monitor.command('system_reset');
    // A paused VM stays paused across system_reset; the user asked for a fresh boot.
    if (this.state.state === 'booting') await s.monitor.command('cont').catch(() => undefined);
    const deadline = this.bootDeadline(s, s.options.bootTimeoutMs);
    try {
      await Promise.race([ready, s.failure, deadline.expired]);
    } catch (e) {
      if (this.session === s) await this.stopSession();
      throw this.fail(e);
    } finally {
      deadline.clear();
    }
    return this.snapshot();
  }

  /**
   * An uncaught error in the worker while QEMU runs is QEMU's: the glue
   * rethrows a trap of one of its pthreads. Record it as QEMU's crash
   * (the page then sees qemu-exited with the reason) and return true so
   * the worker entry keeps the error from killing the whole worker.
   */
  absorbUncaughtError(message: string): boolean {
    const s = this.session;
    // The glue logs the trap first, so the session may already be gone.
    if (!s || s.ended) return Date.now() - this.lastCrashAt < 10_000;
    this.crash(s, message);
    return true;
  }

  // ---- internals -----------------------------------------------------------

  private async bootSession(id: number, options: ResolvedBootOptions): Promise<Status> {
    const base = this.config!.artifactsBase;
    this.setState({ state: 'loading', guest: options.guest, ramMiB: options.ramMiB, build: null, argv: [], error: null });
    this.progress({ phase: 'manifest', label: 'reading the artifacts manifest', loaded: 0, total: 0 });
    const registry = await this.loadRegistry();
    const build = registry.resolve(options.guest, options.build);
    const glue = await this.glueSource(build);
    const liveUpdatable = this.env.backend.createMemory !== undefined && buildLayoutProblem(build.name, glue) === undefined;
    const plan = this.env.backend.plan(options.guest, options.ramMiB, liveUpdatable);
    const argv = [...plan.argv, ...options.extraArgs];
    const program = programOf(build.name);
    this.setState({ build: build.name, argv: [program, ...argv] });

    // Download QEMU's wasm and the guest files, with one combined progress bar.
    const wanted = [build.wasmPath, ...Object.keys(plan.files)];
    const loaded = new Map<string, number>();
    const totals = new Map<string, number>();
    const report = (label: string): void => {
      let l = 0;
      let t = 0;
      for (const p of wanted) {
        l += loaded.get(p) ?? 0;
        t += totals.get(p) ?? 0;
      }
      this.progress({ phase: 'download', label, loaded: l, total: t });
    };
    const fetched = await Promise.all(
      wanted.map(async (path) => {
        const bytes = await download(
          base + path,
          (p) => {
            loaded.set(path, p.loaded);
            totals.set(path, p.total || p.loaded);
            report(`downloading ${path}`);
          },
          this.env.fetch,
        );
        return [path, bytes] as const;
      }),
    );
    this.checkCurrent(id);
    const bytes = new Map(fetched);
    const wasm = bytes.get(build.wasmPath)!;
    checkWasmMagic(base + build.wasmPath, wasm);
    const files: Record<string, Uint8Array> = {};
    for (const [artifact, guestPath] of Object.entries(plan.files)) files[guestPath] = bytes.get(artifact)!;

    this.setState({ state: 'starting' });
    this.progress({ phase: 'instantiate', label: `starting ${build.name}`, loaded: 0, total: 0 });
    const wasmUrl = this.env.wasmUrl(wasm);
    const compile = this.env.backend.compile;
    const module = compile ? await compile(wasm).catch((e: unknown) => {
      wasmUrl.revoke();
      throw new PlaygroundError('load-failed', `${build.name} failed to start: its wasm does not compile (${e instanceof Error ? e.message : String(e)}); run \`npm run artifacts\` and reload`);
    }) : undefined;
    this.checkCurrent(id);
    const prepared: PreparedBuild = { build, wasmUrl: wasmUrl.url, module, layoutProblem: liveUpdatable ? undefined : buildLayoutProblem(build.name, glue) ?? 'no shared Memory' };
    this.prepared.set(build.name, Promise.resolve(prepared));
    const session: Session = {
      id,
      instance: null,
      monitor: new MonitorChannel(
        (b) => session.instance?.writeMonitor(b),
        (line) => this.onMonitorCommand(session, line),
      ),
      options,
      build,
      argv,
      serialTail: '',
      serialDecoder: new TextDecoder(),
      onReady: null,
      revokeWasm: () => undefined, // kept for live updates back to this build
      ended: false,
      crashed: null,
      memory: liveUpdatable ? this.createMemory() : null,
      prepared,
      baseArgv: argv,
      guestFiles: files,
      update: null,
      migrateSeenAt: null,
      monitorSeenAt: null,
      spare: null,
      ...failureSignal(),
    };
    this.session = session;
    const ready = this.waitForReady(session);
    // One deadline from here to the shell: QEMU may also hang while
    // starting (a trap in a pthread leaves the module promise pending).
    const deadline = this.bootDeadline(session, options.bootTimeoutMs);
    const launched = this.launch(session, { prepared, argv, memory: session.memory, files, timeoutMs: 0 })
      .catch((e: unknown) => {
        throw new PlaygroundError(
          'load-failed',
          `${build.name} failed to start: ${e instanceof Error ? e.message : String(e)}${this.recentLogs()}`,
        );
      });
    try {
      const instance = await Promise.race([launched, session.failure, deadline.expired]);
      session.instance = instance;
      if (this.activeBoot !== id) {
        await instance.kill();
        this.checkCurrent(id);
      }
      if (!session.ended && this.state.state === 'starting') this.setState({ state: 'booting' });
      this.progress({ phase: 'boot', label: `booting the ${options.guest} guest`, loaded: 0, total: 0 });
      await Promise.race([ready, session.failure, deadline.expired]);
    } catch (e) {
      // If QEMU shows up after we gave up on it, end it.
      void launched.then((late) => (session.instance === late ? undefined : late.kill()), () => undefined);
      throw e;
    } finally {
      deadline.clear();
    }
    this.progress({ phase: 'done', label: 'guest ready', loaded: 0, total: 0 });
    return this.snapshot();
  }

  /** Launches an instance for the session with every callback wired. */
  private launch(session: Session, req: StartRequest, onRuntimeReady?: (at: number) => void): Promise<QemuInstanceLike> {
    const base = this.config!.artifactsBase;
    session.monitorSeenAt = null;
    const jsUrl = base + req.prepared.build.jsPath;
    const spare = session.spare?.jsUrl === jsUrl ? session.spare : undefined;
    if (spare) session.spare = null;
    return this.env.backend
      .launch({
        jsUrl,
        spare,
        wasmUrl: req.prepared.wasmUrl,
        wasmModule: req.prepared.module,
        memory: req.memory ?? undefined,
        argv: req.argv,
        files: req.files,
        env: req.env,
        adopt: req.adopt,
        execNames: this.execNames(session.options.guest),
        onSerial: (b) => this.onSerial(session, b),
        onMonitor: (b) => this.onMonitorBytes(session, b),
        onLog: (line) => this.onLog(line, session),
        onExec: (request) => {
          if (session === this.session) void this.updates.onExec(session, request);
        },
        onExecRefused: (argv, reason) => {
          this.onLog(`cpr-exec: ${reason}`, session);
          this.updates.onExecRefused(session, argv, reason);
        },
        onRuntimeReady,
      })
      .then((instance) => {
        // An instance replaced by a live update ends without ending the session.
        void instance.exited.then((exit) => {
          if (session.instance === instance && !session.update) this.onExit(session, exit);
        });
        return instance;
      });
  }

  /** For live updates: start an instance and wait until the VM runs. */
  private async startInstance(session: Session, req: StartRequest): Promise<StartTimes> {
    const launchedAt = wallClock();
    let runtimeReadyAt = 0;
    session.monitor.reset();
    const instance = await this.launch(session, req, (at) => {
      runtimeReadyAt = at;
      this.call('log', `[live-update] ${req.prepared.build.name}: runtime ready`);
    });
    session.instance = instance;
    this.call('log', `[live-update] ${req.prepared.build.name}: launched, waiting for the VM to run`);
    const ended = instance.exited.then((exit) => {
      throw new Error(
        `${req.prepared.build.name} exited with status ${exit.status}${exit.message ? ` (${exit.message})` : ''} before the VM ran${this.recentLogs()}`,
      );
    });
    ended.catch(() => undefined);
    let done = false;
    const running = (async () => {
      while (!done) {
        let out: string;
        try {
          out = await session.monitor.command('info status', 3000);
        } catch (e) {
          if (toErrorInfo(e).code !== 'monitor-timeout') throw e;
          // The prompt count can be off by one across the switch (a prompt
          // of the old QEMU, or the new banner's, seen at the wrong moment):
          // an empty line makes QEMU print a fresh prompt.
          instance.writeMonitor(new TextEncoder().encode('\r'));
          continue;
        }
        if (/VM status: running/.test(out)) return wallClock();
        if (/paused \((postmigrate|prelaunch|restore-vm|shutdown|internal-error)\)|paused$/m.test(out) && !/inmigrate/.test(out)) {
          // Loaded, but paused: the source was paused (copy route stops it first).
          await session.monitor.command('cont');
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      return 0;
    })();
    running.catch(() => undefined);
    let runningAt: number;
    try {
      runningAt = await withDeadline(Promise.race([running, ended]), req.timeoutMs || DEFAULT_UPDATE_TIMEOUT_MS, `${req.prepared.build.name} did not run the VM`);
    } finally {
      done = true; // no more polling of a QEMU given up on
    }
    return { launchedAt, runtimeReadyAt: runtimeReadyAt || launchedAt, monitorAt: session.monitorSeenAt ?? runtimeReadyAt, runningAt };
  }

  /** Every name QEMU may exec for this guest: `v2`, `qemu-system-arm@v2`, `qemu-system-arm`. */
  private execNames(guest: GuestName): string[] {
    const builds = this.registry?.list().filter((b) => b.guest === guest) ?? [];
    return [...new Set(builds.flatMap((b) => [b.name, b.version, programOf(b.name)]))];
  }

  /** Starts the instance worker for the next build ahead of the pause. */
  private prewarm(session: Session, prepared: PreparedBuild): void {
    const jsUrl = this.config!.artifactsBase + prepared.build.jsPath;
    if (!this.env.backend.prewarm || session.spare?.jsUrl === jsUrl || session !== this.session) return;
    session.spare?.dispose();
    session.spare = this.env.backend.prewarm(jsUrl);
  }

  /** The build named in a cpr-exec-command, downloaded and compiled. */
  private async prepareTarget(session: Session, name: string): Promise<PreparedBuild> {
    const build = (await this.loadRegistry()).resolve(session.options.guest, execName(name));
    return this.prepare(build);
  }

  /** Downloads and compiles a build once; later calls share the result. */
  private prepare(build: ResolvedBuild): Promise<PreparedBuild> {
    let p = this.prepared.get(build.name);
    if (!p) {
      p = (async () => {
        const base = this.config!.artifactsBase;
        const [wasm, glue] = await Promise.all([download(base + build.wasmPath, () => undefined, this.env.fetch), this.glueSource(build)]);
        checkWasmMagic(base + build.wasmPath, wasm);
        const compile = this.env.backend.compile;
        let module: WebAssembly.Module | undefined;
        try {
          module = compile ? await compile(wasm) : undefined;
        } catch (e) {
          throw new PlaygroundError('load-failed', `${build.name}'s wasm does not compile: ${e instanceof Error ? e.message : String(e)}`);
        }
        const url = this.env.wasmUrl(wasm);
        return { build, wasmUrl: url.url, module, layoutProblem: buildLayoutProblem(build.name, glue) };
      })();
      this.prepared.set(build.name, p);
      // A failed preparation is not cached: the next attempt tries again.
      p.catch(() => this.prepared.delete(build.name));
    }
    return p;
  }

  /** The build's JS glue as text ('' if it cannot be read): it says
   * whether the build speaks our memory layout. */
  private async glueSource(build: ResolvedBuild): Promise<string> {
    try {
      const bytes = await download(this.config!.artifactsBase + build.jsPath, () => undefined, this.env.fetch);
      return new TextDecoder().decode(bytes);
    } catch {
      return '';
    }
  }

  private createMemory(): WebAssembly.Memory {
    const create = this.env.backend.createMemory;
    if (!create) throw new PlaygroundError('bad-state', 'this QEMU backend has no shared Memory');
    return create();
  }

  /** Resolves when the ready line appears; rejects when QEMU ends first. */
  private waitForReady(session: Session): Promise<void> {
    session.serialTail = '';
    return new Promise<void>((resolve) => {
      session.onReady = resolve;
    });
  }

  /** A promise that rejects with boot-timeout after timeoutMs, until cleared. */
  private bootDeadline(session: Session, timeoutMs: number): { expired: Promise<never>; clear(): void } {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const tail = session.serialTail.slice(-300);
        reject(
          new PlaygroundError(
            'boot-timeout',
            `the ${session.options.guest} guest did not reach its shell within ${Math.round(timeoutMs / 1000)} s ` +
              `(no "${GUEST_READY_LINE}" on the serial console). Last serial output: ${JSON.stringify(tail)}` +
              this.recentLogs(),
          ),
        );
      }, timeoutMs);
    });
    expired.catch(() => undefined);
    return { expired, clear: () => clearTimeout(timer) };
  }

  private onSerial(session: Session, bytes: Uint8Array): void {
    if (session !== this.session) return;
    // Look for the ready line in a bounded tail of the text.
    session.serialTail = (session.serialTail + session.serialDecoder.decode(bytes, { stream: true })).slice(-4096);
    if (session.onReady && session.serialTail.includes(GUEST_READY_LINE)) {
      const done = session.onReady;
      session.onReady = null;
      if (this.state.state === 'booting' || this.state.state === 'starting') this.setState({ state: 'running' });
      done();
    }
    // Batch output: QEMU's UARTs write a byte at a time, a message each would swamp the page.
    this.serialOut.push(bytes);
    this.serialTimer ??= setTimeout(() => this.flushSerial(), SERIAL_FLUSH_MS);
  }

  private flushSerial(): void {
    this.serialTimer = null;
    const chunks = this.serialOut;
    this.serialOut = [];
    if (chunks.length === 0) return;
    this.call('serial', concatBytes(chunks));
  }

  private onMonitorBytes(session: Session, bytes: Uint8Array): void {
    if (session !== this.session) return;
    if (session.monitorSeenAt === null) {
      session.monitorSeenAt = wallClock();
      if (session.update) this.call('log', `[live-update] ${session.build.name}: monitor up`);
    }
    session.monitor.feed(bytes);
    this.call('monitor', bytes);
  }

  /** Keeps `paused`/`running` in step with commands typed or sent to HMP. */
  private onMonitorCommand(session: Session, line: string): void {
    if (session !== this.session) return;
    const words = line.split(/\s+/);
    const cmd = words[0] ?? '';
    // Typed cpr-exec: compile the target while the user is still typing,
    // so no compile falls into the pause; time the pause from `migrate`.
    if (cmd === 'migrate_set_parameter' && (words[1] === 'cpr-exec-command' || words[1] === 'cpr-exec-args') && words[2]) {
      void this.prepareTarget(session, words[2].replace(/^['"]|['"]$/g, '')).then(
        (prepared) => this.prewarm(session, prepared),
        () => undefined,
      );
    }
    if (cmd === 'migrate') session.migrateSeenAt = wallClock();
    if (cmd === 'stop' && this.state.state === 'running') this.setState({ state: 'paused' });
    else if ((cmd === 'cont' || cmd === 'c') && this.state.state === 'paused') this.setState({ state: 'running' });
    else if (cmd === 'system_reset' && this.state.state === 'running') {
      // The guest boots again; it is 'running' once its shell is back.
      this.setState({ state: 'booting' });
      if (!session.onReady) void this.waitForReady(session);
    }
  }

  private onLog(line: string, session: Session | null): void {
    this.logs.push(line);
    if (this.logs.length > LOG_LINES) this.logs.shift();
    this.call('log', line);
    // A trap in one of QEMU's pthread workers is only logged by the glue;
    // QEMU then hangs. End it, so the page shows why instead of waiting.
    if (session && CRASH.test(line) && session === this.session) this.crash(session, line);
  }

  /** QEMU trapped and will not end by itself: end it and report why. */
  private crash(session: Session, reason: string): void {
    if (session.ended || session.crashed) return;
    session.crashed = reason;
    this.lastCrashAt = Date.now();
    const error = this.exitError(session, { status: 134 });
    session.fail(error);
    session.monitor.close(error); // a command in flight learns why
    // While booting, boot() reports it; once running, nobody waits, so say it here.
    const booting = this.activeBoot !== 0;
    void this.stopSession().then(() => {
      if (!booting) this.fail(error);
    });
  }

  private onExit(session: Session, exit: { status: number; message?: string }): void {
    if (session.ended) return;
    session.ended = true;
    session.fail(this.exitError(session, exit));
    session.monitor.close(this.exitError(session, exit));
    session.revokeWasm();
    if (session !== this.session) return;
    this.flushSerial();
    this.session = null;
    if (exit.status === 0) this.setState({ state: 'stopped', error: null });
    else this.fail(this.exitError(session, exit));
  }

  private exitError(session: Session, exit: { status: number; message?: string }): PlaygroundError {
    if (session.crashed) {
      const reason = session.crashed;
      return new PlaygroundError('qemu-exited', `${session.build.name} crashed: ${reason}${this.recentLogs(reason)}`);
    }
    const why = `${exit.message ?? ''} ${this.logs.join(' ')}`;
    // Emscripten aborts (rather than rejecting) when the wasm does not
    // compile or link: that is a load failure, not QEMU's own exit.
    if (LOAD_FAILURE.test(why)) {
      return new PlaygroundError(
        'load-failed',
        `${session.build.name} failed to start: its wasm did not load (${exit.message ?? `status ${exit.status}`})` +
          `${this.recentLogs()}; run \`npm run artifacts\` and reload`,
      );
    }
    return new PlaygroundError(
      'qemu-exited',
      `${session.build.name} exited with status ${exit.status}${exit.message ? ` (${exit.message})` : ''}${this.recentLogs()}`,
    );
  }

  private recentLogs(except = ''): string {
    const lines = this.logs.filter((l) => l.trim() !== '' && l !== except).slice(-8);
    return lines.length ? `. QEMU said: ${lines.join(' | ')}` : '';
  }

  private async stopSession(): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = null;
    s.onReady = null;
    s.ended = true;
    s.spare?.dispose();
    s.spare = null;
    const stopped = new PlaygroundError('bad-state', 'QEMU was stopped');
    s.fail(stopped);
    s.monitor.close(stopped);
    this.flushSerial();
    try {
      await s.instance?.kill();
    } finally {
      s.revokeWasm();
    }
  }

  private checkCurrent(id: number): void {
    if (this.activeBoot !== id) {
      throw new PlaygroundError('bad-state', 'this boot was cancelled by stop() or by another boot');
    }
  }

  private liveInstance(): QemuInstanceLike {
    const s = this.session;
    if (!s || !s.instance || s.ended) {
      throw new PlaygroundError('bad-state', `QEMU is not running (state: ${this.state.state}); boot a guest first`);
    }
    return s.instance;
  }

  private async loadRegistry(): Promise<BuildRegistry> {
    if (this.registry) return this.registry;
    if (!this.config) throw new PlaygroundError('bad-state', 'the worker is not initialised: call init() first');
    const url = `${this.config.artifactsBase}manifest.json`;
    const bytes = await download(
      url,
      () => undefined,
      this.env.fetch,
      'the QEMU artifacts are not unpacked: run `npm run artifacts` (it unpacks wasm/dist into wasm/out; ' +
        'if wasm/dist is missing, build it with `npm run build:wasm`, as root, see docs/build.md) and reload',
    );
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new PlaygroundError('load-failed', `${url} is not JSON; run \`npm run artifacts\``);
    }
    this.registry = new BuildRegistry(parseManifest(json));
    return this.registry;
  }

  /** Records an error in the status and returns it as a PlaygroundError. */
  private fail(e: unknown): PlaygroundError {
    const info = toErrorInfo(e);
    const err = e instanceof PlaygroundError ? e : new PlaygroundError(info.code, info.message);
    this.setState({ state: 'error', error: info });
    return err;
  }

  private snapshot(): Status {
    return { ...this.state, argv: [...this.state.argv], error: this.state.error ? { ...this.state.error } : null };
  }

  private setState(patch: Partial<Status>): void {
    this.state = { ...this.state, ...patch, seq: this.state.seq + 1 };
    this.emitStatus();
  }

  private emitStatus(): void {
    this.call('status', this.snapshot());
  }

  private progress(p: Progress): void {
    this.call('progress', p);
  }

  /** Listener calls are fire-and-forget: a closed page must not break QEMU. */
  private call<K extends keyof WorkerListener>(name: K, ...args: Parameters<WorkerListener[K]>): void {
    const l = this.listener;
    if (!l) return;
    try {
      const fn = l[name] as (...a: Parameters<WorkerListener[K]>) => unknown;
      const r = fn.apply(l, args);
      if (r instanceof Promise) r.catch(() => undefined);
    } catch {
      /* the page went away */
    }
  }
}
