// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The worker's side of the contract: owns at most one QEMU session and
// drives its lifecycle (load → start → boot → running → stopped), turning
// every failure into a PlaygroundError with a code. It controls QEMU over
// QMP (worker/qmp.ts): commands with structured replies, and STOP, RESUME
// and RESET events that keep the page's state; the HMP console is the
// user's, passed through untouched. Live updates are the exec path's
// (live-update.ts); QEMU itself is reached through a QemuBackend
// (backend.ts), so tests drive this class with a fake QEMU.
//
// The host's parts, each a file below it that never imports it: a session
// and its making (session.ts), a boot's loading phase (boot-loading.ts),
// snapshots saved and restored (save-restore.ts), what the page is told
// (page-link.ts) and what QEMU said lately (qemu-log.ts). This file keeps
// what ties them: which session is current, the API's checks, the boot's
// order, and QEMU's output and events routed to where they belong.
import { transfer } from 'comlink';
import {
  DEFAULT_MONITOR_TIMEOUT_MS,
  EXEC_FAULTS,
  GUEST_READY_LINE,
  PlaygroundError,
  toErrorInfo,
  type BootOptions,
  type BuildInfo,
  type LiveUpdateOptions,
  type LiveUpdateResult,
  type QemuWorkerApi,
  type RestoreOptions,
  type SnapshotInfo,
  type Status,
  type WorkerConfig,
  type WorkerListener,
} from './api';
import {
  accelEnv,
  buildLayoutProblem,
  CAPTURE_EXEC,
  hasFilesPort,
  type ConsoleName,
  type InstanceExit,
  type QemuBackend,
  type QemuInstanceLike,
} from './backend';
import { loadForBoot } from './boot-loading';
import { BuildStore } from './build-store';
import { programOf } from './builds';
import type { FetchLike } from './download';
import type { FileChannel } from './files';
import { typedHint } from './hmp-lines';
import {
  DEFAULT_UPDATE_TIMEOUT_MS,
  execName,
  LiveUpdates,
  wallClock,
  waitRunning,
  type PreparedBuild,
  type Running,
  type StartRequest,
  type UpdateOutcome,
} from './live-update';
import { resolveBootOptions, type ResolvedBootOptions } from './options';
import { PageLink, type ListenerLike } from './page-link';
import { isCrash, QemuLog } from './qemu-log';
import { QmpClient, QmpError, type QmpEvent } from './qmp';
import { bootedRestore, checkedHead, checkedSnapshot, restoreStart, saveSession, type CheckedHead, type CheckedSnapshot, type Restore } from './save-restore';
import { bootDeadline, dropSpare, newSession, waitForReady, type Session } from './session';
import { WarmUps } from './warm-up';

export interface HostEnvironment {
  backend: QemuBackend;
  fetch?: FetchLike;
  /** Checked before every boot: false means no SharedArrayBuffer. */
  isolated(): boolean;
  /** How long a new QEMU gets to run the VM in a live update. [20000] */
  updateAttemptMs?: number;
}

export class QemuHost implements QemuWorkerApi {
  private config: WorkerConfig | null = null;
  private buildStore: BuildStore | null = null;
  private session: Session | null = null;
  private nextId = 1;
  /** The boot in progress; stop() or a newer boot clears it, cancelling it. */
  private activeBoot = 0;
  private lastCrashAt = -Infinity;
  /** What the page is told, and how. */
  private readonly page = new PageLink();
  /** What QEMU said lately, for error messages. */
  private readonly qemuLog = new QemuLog();
  private readonly updates: LiveUpdates<Session>;
  /** The snapshot openSnapshot() checked, until restoreOpened() takes it. */
  private opened: (CheckedSnapshot & { timeoutMs?: number }) | null = null;
  private readonly warmUps: WarmUps;

  constructor(private readonly env: HostEnvironment) {
    this.warmUps = new WarmUps(env.backend, (line) => this.page.call('log', line));
    this.updates = new LiveUpdates<Session>({
      launch: (s, req, onRuntimeReady, onAwaitingExec) => this.launch(s, req, onRuntimeReady, onAwaitingExec),
      prepare: (s, target) => this.prepareTarget(s, target),
      prewarm: (s, prepared) => this.prewarm(s, prepared),
      warmUp: (s, prepared) => this.warmUp(s, prepared),
      createMemory: () => this.createMemory(),
      pausing: (s) => {
        this.warmUps.abort();
        if (s === this.session) this.page.set({ state: 'updating' });
      },
      ended: (s, outcome) => this.updateEnded(s, outcome),
      // To the page's log only, not into the 'QEMU said' of error messages.
      log: (line) => this.page.call('log', line),
    }, env.updateAttemptMs, () => this.config?.faults ?? []);
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
    if (!s || !s.running || s.ended || !['running', 'paused'].includes(this.page.state)) {
      throw new PlaygroundError('bad-state', `cannot live-update: the guest is ${this.page.state}; boot it first and wait until it runs`);
    }
    if (s.update) throw new PlaygroundError('bad-state', `a live update to ${s.update.target} is in progress`);
    // A save stops the VM and catches an exec of its own (save-restore.ts).
    if (s.saving) throw new PlaygroundError('bad-state', 'a snapshot is being saved: live-update once it is done');
    if (typeof target !== 'string' || target === '') throw new PlaygroundError('bad-options', 'liveUpdate(target): target must be a build name such as "v2"');
    const route = options.route ?? 'cpr-exec';
    if (route !== 'cpr-exec' && route !== 'copy') {
      throw new PlaygroundError('bad-options', `unknown route ${JSON.stringify(route)}: use "cpr-exec" (default) or "copy"`);
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS;
    const build = (await this.store.builds()).resolve(s.options.guest, target);
    let prepared: PreparedBuild;
    try {
      prepared = await this.store.prepare(build);
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
    const unknown = (config.faults ?? []).filter((f) => !EXEC_FAULTS.includes(f));
    if (unknown.length) throw new PlaygroundError('bad-options', `unknown fault ${JSON.stringify(unknown[0])}: faults are ${EXEC_FAULTS.join(', ')}`);
    this.config = config;
    this.buildStore = new BuildStore(config.artifactsBase, {
      fetch: this.env.fetch,
      compile: this.env.backend.compile,
      compileStreaming: this.env.backend.compileStreaming,
    });
    this.page.connect(listener);
  }

  async builds(): Promise<BuildInfo[]> {
    return (await this.store.builds()).list();
  }

  async status(): Promise<Status> {
    return this.page.status();
  }

  async boot(options: BootOptions): Promise<Status> {
    if (!this.config) throw new PlaygroundError('bad-state', 'the worker is not initialised: call init() first');
    const resolved = resolveBootOptions(options);
    if (resolved.from !== 'snapshot') return this.start(resolved, null);
    const booted = bootedRestore(resolved, this.store, this.env.backend, (loaded, total, label) => this.page.progress({ phase: 'download', label, loaded, total }));
    try {
      return await this.start(resolved, await booted.restore);
    } finally {
      booted.dispose();
    }
  }

  async saveSnapshot(): Promise<Blob> {
    const s = this.session;
    if (!s || !s.running || s.ended || !['running', 'paused'].includes(this.page.state)) {
      throw new PlaygroundError('bad-state', `cannot save a snapshot: the guest is ${this.page.state}; boot it first`);
    }
    return saveSession(s);
  }

  async checkSnapshot(file: Blob | Uint8Array, options: RestoreOptions = {}): Promise<SnapshotInfo> {
    return (await checkedSnapshot(await this.checkHead(file, options))).info;
  }

  async openSnapshot(file: Blob | Uint8Array, options: RestoreOptions = {}): Promise<SnapshotInfo> {
    if (!this.config) throw new PlaygroundError('bad-state', 'the worker is not initialised: call init() first');
    this.opened = null;
    const head = await this.checkHead(file, options);
    // The build downloads and compiles while the rest of the file is read.
    void this.store.prepare(head.build).catch(() => undefined);
    const opened = await checkedSnapshot(head, () => this.createMemory());
    this.opened = { ...opened, timeoutMs: options.timeoutMs };
    return opened.info;
  }

  async restoreOpened(): Promise<Status> {
    const opened = this.opened;
    if (!opened) throw new PlaygroundError('bad-state', 'no snapshot is open: call openSnapshot() first');
    this.opened = null;
    const { info, state, ram, build, timeoutMs } = opened;
    // A restore over a running guest keeps its engine.
    const accel = this.session?.options.accel;
    const resolved = resolveBootOptions({ guest: info.guest, ramMiB: info.ramMiB, build: build.name, bootTimeoutMs: timeoutMs, ...(accel ? { accel } : {}) });
    return this.start(resolved, { argv: info.argv, state, ram });
  }

  /** A snapshot file's header checked, and the build to restore it on. */
  private checkHead(file: Blob | Uint8Array, options: RestoreOptions): Promise<CheckedHead> {
    return checkedHead(file, options, () => this.store, this.env.backend.createMemory !== undefined);
  }

  /** Boots a guest, or restores one (`restore`): stops the running one first. */
  private async start(resolved: ResolvedBootOptions, restore: Restore | null): Promise<Status> {
    if (!this.env.isolated()) {
      throw this.page.fail(
        new PlaygroundError(
          'not-isolated',
          'the page is not cross-origin isolated, so QEMU cannot use SharedArrayBuffer: serve it with ' +
            'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp',
        ),
      );
    }
    const id = this.nextId++;
    this.activeBoot = id;
    this.opened = null;
    await this.stopSession();
    this.qemuLog.clear();
    try {
      return await this.bootSession(id, resolved, restore);
    } catch (e) {
      // A boot cancelled by stop() or by a newer boot only reports that;
      // the state belongs to whoever cancelled it.
      if (this.activeBoot !== id) throw new PlaygroundError('bad-state', 'this boot was cancelled by stop() or by another boot');
      if (this.session?.id === id) await this.stopSession();
      throw this.page.fail(e);
    } finally {
      if (this.activeBoot === id) this.activeBoot = 0;
    }
  }

  async writeSerial(bytes: Uint8Array): Promise<void> {
    this.liveSession().input.write('serial', bytes);
  }

  async writeMonitor(bytes: Uint8Array): Promise<void> {
    this.liveSession().input.write('monitor', bytes);
  }

  /** Writes a file into the guest (worker/files.ts); resolves with its size. */
  async putFile(path: string, bytes: Uint8Array): Promise<number> {
    if (!(bytes instanceof Uint8Array)) throw new PlaygroundError('bad-options', 'putFile(path, bytes): bytes must be a Uint8Array');
    return this.fileChannel().put(path, bytes);
  }

  /** A guest file's bytes. */
  async getFile(path: string): Promise<Uint8Array> {
    const bytes = await this.fileChannel().get(path);
    return transfer(bytes, [bytes.buffer as ArrayBuffer]);
  }

  /** The running VM's file channel; refused at once for a VM without one. */
  private fileChannel(): FileChannel {
    const s = this.liveSession();
    if (!hasFilesPort(s.argv)) {
      throw new PlaygroundError(
        'file-failed',
        'this VM has no file channel: it runs from a snapshot or kept VM saved before the playground had one, or from a command line without it (docs/files.md)',
      );
    }
    return s.files;
  }

  /** One HMP command, run through QMP's human-monitor-command: the
   * user's HMP console sees nothing of it. */
  async monitor(command: string, timeoutMs: number = DEFAULT_MONITOR_TIMEOUT_MS): Promise<string> {
    if (typeof command !== 'string') throw new PlaygroundError('bad-options', 'monitor(command): command must be a string');
    if (/[\r\n]/.test(command)) throw new PlaygroundError('bad-options', 'a monitor command is one line; send several commands one by one');
    const { qmp } = this.live();
    try {
      const out = await qmp.execute<string>('human-monitor-command', { 'command-line': command.trim() }, timeoutMs);
      return String(out).replace(/\r\n/g, '\n').replace(/\n$/, '');
    } catch (e) {
      if (e instanceof QmpError) throw new PlaygroundError('bad-options', `monitor command "${command}": ${e.desc}`);
      throw e;
    }
  }

  async stop(): Promise<Status> {
    this.activeBoot = 0;
    this.opened = null;
    if (!this.session) {
      if (this.page.state !== 'idle') this.page.set({ state: 'stopped', error: null });
      return this.page.status();
    }
    this.page.set({ state: 'stopping' });
    await this.stopSession();
    this.page.set({ state: 'stopped', error: null });
    return this.page.status();
  }

  async reset(): Promise<Status> {
    const s = this.session;
    if (!s || !s.running || !['running', 'paused', 'booting'].includes(this.page.state)) {
      throw new PlaygroundError('bad-state', `cannot reset: the guest is ${this.page.state}; boot it first`);
    }
    const { qmp } = s.running;
    const ready = waitForReady(s);
    this.page.set({ state: 'booting', error: null });
    this.page.progress({ phase: 'boot', label: 'resetting the guest', loaded: 0, total: 0 });
    await qmp.execute('system_reset');
    // A paused VM stays paused across system_reset; the user asked for a fresh boot.
    await qmp.execute('cont').catch(() => undefined);
    const deadline = bootDeadline(s, s.options.bootTimeoutMs, () => this.qemuLog.said());
    try {
      await Promise.race([ready, s.failure, deadline.expired]);
    } catch (e) {
      if (this.session === s) await this.stopSession();
      throw this.page.fail(e);
    } finally {
      deadline.clear();
    }
    return this.page.status();
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

  private async bootSession(id: number, options: ResolvedBootOptions, restore: Restore | null): Promise<Status> {
    this.page.set({ state: 'loading', guest: options.guest, ramMiB: options.ramMiB, accel: options.accel, build: null, argv: [], error: null });
    this.page.progress({ phase: 'manifest', label: 'reading the artifacts manifest', loaded: 0, total: 0 });
    const registry = await this.store.builds();
    const build = registry.resolve(options.guest, options.build);
    const glue = await this.store.glueSource(build);
    const liveUpdatable = this.env.backend.createMemory !== undefined && buildLayoutProblem(build.name, glue) === undefined;
    const plan = this.env.backend.plan(options.guest, options.ramMiB, liveUpdatable);
    // A restored VM runs with the arguments it was saved with.
    const argv = restore ? restore.argv : [...plan.argv, ...options.extraArgs];
    const program = programOf(build.name);
    this.page.set({ build: build.name, argv: [program, ...argv] });

    // QEMU's wasm and the guest files; meanwhile its workers start.
    const { compiled, files, memory, spare } = await loadForBoot({
      store: this.store,
      backend: this.env.backend,
      build,
      plan,
      liveUpdatable,
      restore,
      createMemory: () => this.createMemory(),
      progress: (p) => this.page.progress(p),
      checkCurrent: () => this.checkCurrent(id),
    });

    this.page.set({ state: 'starting' });
    this.page.progress({ phase: 'instantiate', label: `starting ${build.name}`, loaded: 0, total: 0 });
    const prepared: PreparedBuild = { ...compiled, layoutProblem: liveUpdatable ? undefined : buildLayoutProblem(build.name, glue) ?? 'no shared Memory' };
    this.store.remember(prepared);
    const session = newSession({ id, options, build, argv, memory, prepared, guestFiles: files, spare }, (s, line) => this.onTypedLine(s, line));
    // The booted build's code gets compiled by this start itself.
    this.warmUps.ran(build.name);
    this.session = session;
    const ready = waitForReady(session);
    // One deadline from here to the shell: QEMU may also hang while
    // starting (a trap in a pthread leaves the module promise pending).
    const deadline = bootDeadline(session, options.bootTimeoutMs, () => this.qemuLog.said());
    const launched = this.launch(session, { prepared, memory: session.memory, ...restoreStart(restore, argv, files) })
      .catch((e: unknown) => {
        throw new PlaygroundError(
          'load-failed',
          `${build.name} failed to start: ${e instanceof Error ? e.message : String(e)}${this.qemuLog.said()}`,
        );
      });
    try {
      const running = await Promise.race([launched, session.failure, deadline.expired]);
      if (this.activeBoot !== id) {
        await running.instance.kill();
        this.checkCurrent(id);
      }
      if (restore) {
        this.page.progress({ phase: 'boot', label: `loading the snapshot into ${build.name}`, loaded: 0, total: 0 });
        session.onReady = null;
        await Promise.race([waitRunning(running, options.bootTimeoutMs, build.name), session.failure, deadline.expired]).catch((e: unknown) => {
          if (e instanceof PlaygroundError) throw e;
          throw new PlaygroundError('snapshot-failed', `the snapshot did not load: ${e instanceof Error ? e.message : String(e)}${this.qemuLog.said()}`);
        });
        this.page.set({ state: 'running' });
        if (restore.booted) running.instance.write('serial', new TextEncoder().encode('\n'));
      } else {
        if (!session.ended && this.page.state === 'starting') this.page.set({ state: 'booting' });
        this.page.progress({ phase: 'boot', label: `booting the ${options.guest} guest`, loaded: 0, total: 0 });
        await Promise.race([ready, session.failure, deadline.expired]);
      }
    } catch (e) {
      // If QEMU shows up after we gave up on it, end it.
      void launched.then((late) => (session.running === late ? undefined : late.instance.kill()), () => undefined);
      throw e;
    } finally {
      deadline.clear();
    }
    this.page.progress({ phase: 'done', label: 'guest ready', loaded: 0, total: 0 });
    return this.page.status();
  }

  /**
   * Launches an instance for the session with every console wired and
   * its QMP client made; it becomes session.running (one started `early`
   * only once the live update hands it the exec). Its exit ends the
   * session unless a live update retires or replaces it.
   */
  private async launch(session: Session, req: StartRequest, onRuntimeReady?: (at: number) => void, onAwaitingExec?: (at: number) => void): Promise<Running> {
    const jsUrl = this.store.url(req.prepared.build.jsPath);
    const spare = session.spare?.jsUrl === jsUrl ? session.spare : undefined;
    if (spare) session.spare = null;
    // The QMP client exists before QEMU does: its greeting may come first.
    let instance: QemuInstanceLike | null = null;
    const qmp = new QmpClient((b) => instance?.write('qmp', b));
    const launched = await this.env.backend.launch({
      jsUrl,
      spare,
      wasmUrl: req.prepared.wasmUrl,
      wasmModule: req.prepared.module,
      memory: req.memory ?? undefined,
      argv: req.argv,
      files: req.files,
      transfer: req.transfer,
      env: { ...accelEnv(session.options.accel), ...req.env },
      adopt: req.adopt,
      early: req.early,
      execNames: this.execNames(session),
      onConsole: (c, b) => this.onConsole(session, qmp, c, b),
      // A save's refused exec is QEMU's to report, and no news to the user.
      // One started early is not the session's QEMU until the update hands
      // it the exec: its crash is the update's to handle.
      onLog: (line) =>
        session.onCapture && line.includes(CAPTURE_EXEC) ? undefined : this.onLog(line, req.early && session.running?.instance !== instance ? null : session),
      onExec: (request) => {
        if (session !== this.session) return;
        session.input.hold(request.unread);
        void this.updates.onExec(session, request);
      },
      onUnread: (c, b) => session.input.bounce(c, b),
      onExecRefused: (argv, reason) => {
        this.onLog(`cpr-exec: ${reason}`, session);
        this.updates.onExecRefused(session, argv, reason);
      },
      onCapture: (capture) => session.onCapture?.(capture),
      onRuntimeReady,
      onAwaitingExec,
    });
    instance = launched;
    qmp.negotiate();
    const running: Running = { instance: launched, qmp };
    if (!req.early) session.running = running;
    qmp.onEvent((e) => this.onQmpEvent(session, running, e));
    // MIGRATION events tell an update's migration failed; harmless otherwise.
    void qmp.ready.then(() => qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] })).catch(() => undefined);
    void launched.exited.then((exit) => {
      qmp.close(new PlaygroundError('qemu-exited', `${req.prepared.build.name} exited with status ${exit.status}`));
      if (session.running !== running) return; // replaced by a live update
      if (this.updates.endsSession(session, launched)) this.onExit(session, exit);
    });
    return running;
  }

  /** Runs a build once off to the side before its first live update in
   * this page (warm-up.ts); once per build. */
  private warmUp(session: Session, prepared: PreparedBuild): Promise<void> {
    const module = prepared.module;
    // Without a compiled module each instance compiles its own: nothing to share.
    if (!module) return Promise.resolve();
    return this.warmUps.once(prepared.build.name, () => ({
      jsUrl: this.store.url(prepared.build.jsPath),
      wasmUrl: prepared.wasmUrl,
      module,
      argv: session.baseArgv,
      files: session.guestFiles,
      env: accelEnv(session.options.accel),
    }));
  }

  /** The builds the session's QEMU may exec into (cpr-exec-command). */
  private execNames(session: Session): string[] {
    return this.buildStore?.known()?.execNames(session.options.guest) ?? [];
  }

  /** Starts the instance worker for the next build ahead of the pause;
   * settles once it is staged. */
  private prewarm(session: Session, prepared: PreparedBuild): Promise<void> {
    const jsUrl = this.store.url(prepared.build.jsPath);
    if (session.spare?.jsUrl === jsUrl) return session.spare.ready;
    if (!this.env.backend.prewarm || session !== this.session) return Promise.resolve();
    dropSpare(session);
    // Staged: its file system filled and the glue waiting at the
    // instantiation, so that the pause pays for neither.
    const stage = session.memory && prepared.module
      ? {
          jsUrl,
          wasmUrl: prepared.wasmUrl,
          wasmModule: prepared.module,
          memory: session.memory,
          files: session.guestFiles,
          execNames: this.execNames(session),
        }
      : undefined;
    session.spare = this.env.backend.prewarm(jsUrl, stage);
    return session.spare.ready;
  }

  /** The build named in a cpr-exec-command, downloaded and compiled. */
  private async prepareTarget(session: Session, name: string): Promise<PreparedBuild> {
    const build = (await this.store.builds()).resolve(session.options.guest, execName(name));
    return this.store.prepare(build);
  }

  private createMemory(): WebAssembly.Memory {
    const create = this.env.backend.createMemory;
    if (!create) throw new PlaygroundError('bad-state', 'this QEMU backend has no shared Memory');
    return create();
  }

  private onSerial(session: Session, bytes: Uint8Array): void {
    if (session !== this.session) return;
    // Look for the ready line in a bounded tail of the text.
    session.serialTail = (session.serialTail + session.serialDecoder.decode(bytes, { stream: true })).slice(-4096);
    if (session.onReady && session.serialTail.includes(GUEST_READY_LINE)) {
      const done = session.onReady;
      session.onReady = null;
      if (this.page.state === 'booting' || this.page.state === 'starting') this.page.set({ state: 'running' });
      done();
    }
    this.page.serial(bytes);
  }

  /** One chunk of a console's output, to where it belongs. */
  private onConsole(session: Session, qmp: QmpClient, console: ConsoleName, bytes: Uint8Array): void {
    switch (console) {
      case 'serial':
        this.onSerial(session, bytes);
        return;
      case 'monitor':
        if (session !== this.session) return;
        session.hmp.feed(bytes);
        this.page.call('monitor', bytes);
        return;
      case 'qmp':
        qmp.feed(bytes);
        return;
      case 'files':
        if (session === this.session) session.files.feed(bytes);
        return;
    }
  }

  /** QEMU's events keep the page's state: the VM stopped or runs again
   * (from either monitor, or the guest), the guest was reset. */
  private onQmpEvent(session: Session, running: Running, e: QmpEvent): void {
    if (session !== this.session || session.running !== running) return;
    switch (e.kind) {
      case 'stop':
        session.stoppedAt = e.at;
        if (this.page.state === 'running') this.page.set({ state: 'paused' });
        return;
      case 'resume':
        session.stoppedAt = null;
        if (this.page.state === 'paused') this.page.set({ state: 'running' });
        return;
      case 'reset':
        // The guest boots again; it is 'running' once its shell is back.
        if (this.page.state === 'running' || this.page.state === 'paused') {
          this.page.set({ state: 'booting' });
          if (!session.onReady) void waitForReady(session);
        }
        return;
      case 'shutdown':
      case 'migration':
      case 'other':
        return;
    }
  }

  /** A command line typed into the HMP console: only hints (hmp-lines.ts). */
  private onTypedLine(session: Session, line: string): void {
    if (session !== this.session) return;
    const hint = typedHint(line);
    switch (hint.kind) {
      case 'exec-target':
        // Compile the target while the user is still typing, so no
        // compile falls into the pause.
        void this.prepareTarget(session, hint.name).then(
          (prepared) => {
            void this.prewarm(session, prepared);
            void this.warmUp(session, prepared);
          },
          () => undefined,
        );
        return;
      case 'migrate':
        session.migrateTypedAt = wallClock();
        return;
      case 'none':
        return;
    }
  }

  /** An update ended, by whichever route: the page's state follows. */
  private updateEnded(s: Session, outcome: UpdateOutcome): void {
    s.migrateTypedAt = null;
    s.input.release();
    switch (outcome.kind) {
      case 'updated': {
        const { prepared, argv, result } = outcome;
        s.prepared = prepared;
        s.build = prepared.build;
        s.argv = argv;
        s.stoppedAt = null;
        if (s !== this.session) return;
        this.page.set({ state: 'running', build: prepared.build.name, argv: [programOf(prepared.build.name), ...argv], error: null });
        this.page.call('liveUpdate', result);
        return;
      }
      case 'refused':
        return;
      case 'restored':
        s.stoppedAt = null;
        if (s === this.session && this.page.state === 'updating') this.page.set({ state: 'running' });
        return;
      case 'lost':
        // QEMU's own exit (onExit) or stop() already ended the session.
        if (s !== this.session || s.ended) return;
        void this.stopSession().then(() => this.page.fail(outcome.error));
        return;
    }
  }

  private onLog(line: string, session: Session | null): void {
    this.qemuLog.add(line);
    this.page.call('log', line);
    // A trap in one of QEMU's pthread workers is only logged by the glue;
    // QEMU then hangs. End it, so the page shows why instead of waiting.
    // Not while a live update starts the next QEMU: the update watches
    // that one itself (its exit, or its time running out) and gives the
    // VM back to the old build if it fails.
    if (session && isCrash(line) && session === this.session && session.update?.phase !== 'replacing') this.crash(session, line);
  }

  /** QEMU trapped and will not end by itself: end it and report why. */
  private crash(session: Session, reason: string): void {
    if (session.ended || session.crashed) return;
    session.crashed = reason;
    this.lastCrashAt = Date.now();
    const error = this.qemuLog.exitError(session, { status: 134 });
    session.fail(error);
    session.running?.qmp.close(error); // a command in flight learns why
    // While booting, boot() reports it; once running, nobody waits, so say it here.
    const booting = this.activeBoot !== 0;
    void this.stopSession().then(() => {
      if (!booting) this.page.fail(error);
    });
  }

  private onExit(session: Session, exit: InstanceExit): void {
    if (session.ended) return;
    session.ended = true;
    const error = this.qemuLog.exitError(session, exit);
    session.fail(error);
    session.running?.qmp.close(error);
    // A next instance started ahead (staged with the guest's files) has
    // nothing to take over any more.
    dropSpare(session);
    session.update?.end({ kind: 'lost', error: new PlaygroundError('live-update-failed', `QEMU ended during the live update: ${error.message}`) });
    if (session !== this.session) return;
    this.page.flushSerial();
    this.session = null;
    if (exit.status === 0) this.page.set({ state: 'stopped', error: null });
    else this.page.fail(error);
  }

  private async stopSession(): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = null;
    s.onReady = null;
    s.ended = true;
    dropSpare(s);
    const stopped = new PlaygroundError('bad-state', 'QEMU was stopped');
    s.fail(stopped);
    s.running?.qmp.close(stopped);
    s.update?.end({ kind: 'lost', error: new PlaygroundError('bad-state', 'QEMU was stopped during the live update') });
    this.page.flushSerial();
    // A session's Memory is its own: the next session makes a fresh one.
    await s.running?.instance.kill({ memoryDiscarded: true });
  }

  private checkCurrent(id: number): void {
    if (this.activeBoot !== id) {
      throw new PlaygroundError('bad-state', 'this boot was cancelled by stop() or by another boot');
    }
  }

  private live(): Running {
    return this.liveSession().running!;
  }

  private liveSession(): Session {
    const s = this.session;
    if (!s || !s.running || s.ended) {
      throw new PlaygroundError('bad-state', `QEMU is not running (state: ${this.page.state}); boot a guest first`);
    }
    return s;
  }

  /** The build store, once init() gave the artifacts' URL. */
  private get store(): BuildStore {
    if (!this.buildStore) throw new PlaygroundError('bad-state', 'the worker is not initialised: call init() first');
    return this.buildStore;
  }
}
