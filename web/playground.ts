// Runs on the page's main thread.
//
// window.playground: the typed page API for tutorials and automation
// (docs/api.md). It owns the QEMU host worker and mirrors its status, so
// `status()` and `serialText()` answer without a round trip. The UI is
// built on this API too; it never talks to the worker directly.
import { proxy, transfer, wrap, type Remote } from 'comlink';
import {
  DEFAULT_MONITOR_TIMEOUT_MS,
  PlaygroundError,
  registerTransferHandlers,
  toErrorInfo,
  type BootOptions,
  type BuildInfo,
  type ErrorInfo,
  type ExecFault,
  type LiveUpdateOptions,
  type LiveUpdateResult,
  type Progress,
  type QemuWorkerApi,
  type RestoreOptions,
  type SnapshotInfo,
  type Status,
  type WorkerListener,
} from '../worker/api';
import { SerialBuffer, type WaitOptions } from './serial-buffer';
import { isolationProblem } from './isolation';

export type Disposer = () => void;

/** The API published as `window.playground`. */
export interface PlaygroundApi {
  /** Boots a guest and resolves once its shell is ready. */
  boot(options?: BootOptions): Promise<Status>;
  /** Types text into the serial console (use '\n' for Enter). */
  sendSerial(text: string): Promise<void>;
  /** Everything the serial console printed since the page loaded ('\r' removed). */
  serialText(from?: number): string;
  /** Offset of the end of serialText(), for `waitForSerial(..., { from })`. */
  serialOffset(): number;
  /** Resolves with the first match of `pattern` in the serial text. [30000 ms] */
  waitForSerial(pattern: string | RegExp, timeoutMs?: number, options?: WaitOptions): Promise<string>;
  /** Runs one HMP command; resolves with its output. */
  monitor(command: string, timeoutMs?: number): Promise<string>;
  /** State, build name, full QEMU argv, guest RAM, last error. */
  status(): Status;
  stop(): Promise<Status>;
  reset(): Promise<Status>;
  builds(): Promise<BuildInfo[]>;
  /** Replaces the running QEMU by build `target` (`'v2'`, `'qemu-system-arm@v2'`,
   * ...) while the guest keeps running; resolves with the guest's pause. */
  liveUpdate(target: string, options?: LiveUpdateOptions): Promise<LiveUpdateResult>;
  /** Saves the running VM as a snapshot file (QEMU's own migration
   * stream, compressed, with a checked header); the VM runs on. */
  saveSnapshot(): Promise<Blob>;
  /** Checks a snapshot file whole, then replaces the running guest by the
   * VM in it; a bad file is refused (bad-snapshot) before anything is
   * touched. `options.build` restores on another build (`'v2'`). */
  restoreSnapshot(file: Blob | ArrayBuffer | Uint8Array, options?: RestoreOptions): Promise<Status>;
  /** What a snapshot file holds, checked whole; touches nothing. */
  checkSnapshot(file: Blob | ArrayBuffer | Uint8Array, options?: RestoreOptions): Promise<SnapshotInfo>;
  /** Writes a file into the guest at `path` (absolute; folders made; up to
   * 64 MiB); resolves with its size in the guest. It survives live
   * updates, and a transfer may span one (docs/files.md). */
  putFile(path: string, data: Blob | ArrayBuffer | Uint8Array): Promise<number>;
  /** The bytes of the guest file `path` (up to 64 MiB). */
  getFile(path: string): Promise<Uint8Array>;
  /** Every live update this page saw finish, oldest first (the pause chart's numbers). */
  liveUpdates(): LiveUpdateResult[];
  /** Every finished live update, also one typed into the monitor. */
  onLiveUpdate(listener: (result: LiveUpdateResult) => void): Disposer;
  onSerial(listener: (bytes: Uint8Array) => void): Disposer;
  onMonitor(listener: (bytes: Uint8Array) => void): Disposer;
  onStatus(listener: (status: Status) => void): Disposer;
  onProgress(listener: (progress: Progress) => void): Disposer;
  onLog(listener: (line: string) => void): Disposer;
  /** Raw bytes to the monitor, for an interactive console. */
  sendMonitor(text: string): Promise<void>;
}

declare global {
  interface Window {
    /** The playground's page API (docs/api.md). */
    playground: PlaygroundApi;
  }
}

/** A tiny typed event: `on(listener)` returns its disposer. */
class Emitter<T> {
  private readonly listeners = new Set<(value: T) => void>();
  on(listener: (value: T) => void): Disposer {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(value: T): void {
    for (const l of [...this.listeners]) {
      try {
        l(value);
      } catch (e) {
        console.error('playground listener failed', e);
      }
    }
  }
}

const encoder = new TextEncoder();

/** A snapshot file as the worker takes it: a Blob by reference (the
 * worker reads it, once), bytes copied once and transferred (they stay
 * the caller's). */
function snapshotToSend(file: Blob | ArrayBuffer | Uint8Array): Blob | Uint8Array {
  if (file instanceof Blob) return file;
  return sendBytes(copiedBytes(file, 'a snapshot is given as a Blob, an ArrayBuffer or a Uint8Array'));
}

/** The caller's bytes in a buffer of their own (theirs stay usable). */
function copiedBytes(data: ArrayBuffer | Uint8Array, what: string): Uint8Array {
  if (data instanceof Uint8Array) return data.slice();
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  throw new PlaygroundError('bad-options', what);
}

function sendBytes(bytes: Uint8Array): Uint8Array {
  return transfer(bytes, [bytes.buffer as ArrayBuffer]);
}

/** A worker whose host is initialised: its events count once it is the
 * Playground's worker (adopt()). */
interface Spawned {
  worker: Worker;
  remote: Remote<QemuWorkerApi>;
  /** Rejects when the worker itself fails (a call to it would never end). */
  failed: Promise<never>;
}

export interface PlaygroundDeps {
  /** Creates the worker; tests pass a fake. */
  createWorker(): Worker;
  artifactsBase: string;
  isolated: boolean;
  /** Failures to inject into live updates (`?fault=`). [] */
  faults?: ExecFault[];
}

export class Playground implements PlaygroundApi {
  private readonly serial = new SerialBuffer();
  private readonly serialEvents = new Emitter<Uint8Array>();
  private readonly monitorEvents = new Emitter<Uint8Array>();
  private readonly statusEvents = new Emitter<Status>();
  private readonly progressEvents = new Emitter<Progress>();
  private readonly logEvents = new Emitter<string>();
  private readonly updateEvents = new Emitter<LiveUpdateResult>();
  private readonly updates: LiveUpdateResult[] = [];
  private current: Status = { seq: 0, state: 'idle', guest: null, build: null, argv: [], ramMiB: null, accel: null, error: null };
  private remote: Remote<QemuWorkerApi> | null = null;
  private worker: Worker | null = null;
  private ready: Promise<Remote<QemuWorkerApi>> | null = null;
  /** The current worker has started a QEMU. */
  private booted = false;
  /** QEMU's last log line, for when the worker itself dies. */
  private lastLog = '';

  constructor(private readonly deps: PlaygroundDeps) {
    registerTransferHandlers();
  }

  async boot(options: BootOptions = {}): Promise<Status> {
    // Each boot gets a fresh worker: ending the old one ends every thread
    // of the old QEMU, even one that hung or trapped while starting.
    if (this.booted) await this.replaceWorker();
    this.booted = true;
    return this.call((w) => w.boot(options)).then((s) => this.setStatus(s));
  }

  async sendSerial(text: string): Promise<void> {
    if (typeof text !== 'string') throw new PlaygroundError('bad-options', 'sendSerial(text): text must be a string');
    // Terminals send CR for Enter; the guest's tty turns it into NL.
    const bytes = encoder.encode(text.replace(/\r?\n/g, '\r'));
    await this.call((w) => w.writeSerial(bytes));
  }

  async sendMonitor(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    await this.call((w) => w.writeMonitor(bytes));
  }

  serialText(from = 0): string {
    return this.serial.read(from);
  }

  serialOffset(): number {
    return this.serial.end;
  }

  waitForSerial(pattern: string | RegExp, timeoutMs = 30_000, options: WaitOptions = {}): Promise<string> {
    return this.serial.waitFor(pattern, timeoutMs, options);
  }

  monitor(command: string, timeoutMs = DEFAULT_MONITOR_TIMEOUT_MS): Promise<string> {
    return this.call((w) => w.monitor(command, timeoutMs));
  }

  status(): Status {
    return { ...this.current, argv: [...this.current.argv] };
  }

  stop(): Promise<Status> {
    if (!this.remote) return Promise.resolve(this.status());
    return this.call((w) => w.stop()).then((s) => this.setStatus(s));
  }

  reset(): Promise<Status> {
    return this.call((w) => w.reset()).then((s) => this.setStatus(s));
  }

  builds(): Promise<BuildInfo[]> {
    return this.call((w) => w.builds());
  }

  liveUpdate(target: string, options: LiveUpdateOptions = {}): Promise<LiveUpdateResult> {
    return this.call((w) => w.liveUpdate(target, options));
  }

  async saveSnapshot(): Promise<Blob> {
    return this.call((w) => w.saveSnapshot());
  }

  async putFile(path: string, data: Blob | ArrayBuffer | Uint8Array): Promise<number> {
    const bytes = data instanceof Blob
      ? new Uint8Array(await data.arrayBuffer())
      : copiedBytes(data, 'putFile(path, data): data is a Blob, an ArrayBuffer or a Uint8Array');
    return this.call((w) => w.putFile(path, sendBytes(bytes)));
  }

  getFile(path: string): Promise<Uint8Array> {
    return this.call((w) => w.getFile(path));
  }

  async checkSnapshot(file: Blob | ArrayBuffer | Uint8Array, options: RestoreOptions = {}): Promise<SnapshotInfo> {
    const sent = snapshotToSend(file);
    return this.call((w) => w.checkSnapshot(sent, options));
  }

  async restoreSnapshot(file: Blob | ArrayBuffer | Uint8Array, options: RestoreOptions = {}): Promise<Status> {
    const sent = snapshotToSend(file);
    if (!this.booted) {
      // No QEMU ran in this worker yet: it checks the file and restores it.
      this.booted = true;
      return this.call(async (w) => {
        await w.openSnapshot(sent, options);
        return w.restoreOpened();
      }).then((s) => this.setStatus(s));
    }
    // As for boot(), a fresh worker restores it. That worker checks the
    // file (the only check: sha256, and gunzip of a small file) and
    // places its RAM into a Memory of its own as it reads it, while the
    // running guest goes on in this one; a bad file ends that worker and
    // leaves the guest alone.
    return this.call(async () => {
      let next: Spawned | undefined;
      try {
        next = await this.spawn(false);
        await Promise.race([next.remote.openSnapshot(sent, options), next.failed]);
      } catch (e) {
        next?.worker.terminate();
        const info = toErrorInfo(e);
        // Not the page's worker that failed: the running guest goes on.
        if (info.code === 'worker-crashed') throw new PlaygroundError('load-failed', `${info.message}; the running guest was not touched`);
        throw e;
      }
      // The file passed: the running guest ends while the restored one
      // starts (each has its own Memory), not before.
      this.retire();
      this.booted = true;
      this.ready = this.adopt(next);
      await this.ready;
      return next.remote.restoreOpened();
    }).then((s) => this.setStatus(s));
  }

  liveUpdates(): LiveUpdateResult[] {
    return this.updates.map((r) => ({ ...r, phases: { ...r.phases } }));
  }

  onLiveUpdate(l: (result: LiveUpdateResult) => void): Disposer {
    return this.updateEvents.on(l);
  }

  onSerial(l: (bytes: Uint8Array) => void): Disposer {
    return this.serialEvents.on(l);
  }
  onMonitor(l: (bytes: Uint8Array) => void): Disposer {
    return this.monitorEvents.on(l);
  }
  onStatus(l: (status: Status) => void): Disposer {
    return this.statusEvents.on(l);
  }
  onProgress(l: (progress: Progress) => void): Disposer {
    return this.progressEvents.on(l);
  }
  onLog(l: (line: string) => void): Disposer {
    return this.logEvents.on(l);
  }

  /** Ends the worker and everything in it. */
  dispose(): void {
    this.worker?.terminate();
    this.worker = null;
    this.remote = null;
    this.ready = null;
    this.booted = false;
  }

  /** Ends the page's worker in the background, its QEMU stopped politely
   * first (bounded): no longer the page's, its events and status count no
   * more. */
  private retire(): void {
    const { worker, remote } = this;
    this.worker = null;
    this.remote = null;
    this.ready = null;
    if (!worker || !remote) return;
    const stopped = remote.stop().catch(() => undefined);
    void Promise.race([stopped, new Promise((r) => setTimeout(r, 5000))]).then(() => worker.terminate());
  }

  /** Stops QEMU politely (bounded), then ends its worker. */
  private async replaceWorker(): Promise<void> {
    const remote = this.remote;
    if (remote) {
      const stopped = remote.stop().then((s) => this.setStatus(s), () => undefined);
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 5000))]);
    }
    this.dispose();
  }

  // ---- internals -----------------------------------------------------------

  /** Runs a worker call; errors land in the status (and so in the error panel). */
  private async call<T>(fn: (w: Remote<QemuWorkerApi>) => Promise<T>): Promise<T> {
    try {
      const problem = isolationProblem(this.deps.isolated);
      if (problem) throw new PlaygroundError('not-isolated', problem);
      return await fn(await this.connect());
    } catch (e) {
      const info = toErrorInfo(e);
      if (info.code === 'not-isolated' || info.code === 'worker-crashed') {
        this.setStatus({ ...this.current, seq: this.current.seq + 1, state: 'error', error: info });
      } else if (this.remote) {
        // The worker may have changed state (boot-timeout, qemu-exited);
        // have the mirror right before the caller sees the error.
        await this.remote.status().then((s) => this.setStatus(s), () => undefined);
      }
      throw e instanceof PlaygroundError ? e : new PlaygroundError(info.code, info.message);
    }
  }

  private connect(): Promise<Remote<QemuWorkerApi>> {
    this.ready ??= this.spawn(true).then((s) => s.remote);
    return this.ready;
  }

  /** Starts a worker and initialises its host. `now`: it is the page's
   * worker at once; else adopt() makes it so later. */
  private async spawn(now: boolean): Promise<Spawned> {
    const worker = this.deps.createWorker();
    if (now) {
      this.worker = worker;
      // A new worker counts its status from 0 again.
      this.current = { ...this.current, seq: -1 };
    }
    // Events count only from this.worker: not from older workers, and
    // not from one that checks a snapshot while the running guest's
    // worker is still the page's.
    const mine = (): boolean => this.worker === worker;
    let fail!: (e: PlaygroundError) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => undefined); // observed by whoever races it
    worker.addEventListener('error', (ev) => {
      const message = ev.message || 'the QEMU worker failed to load';
      fail(new PlaygroundError('worker-crashed', `the QEMU worker failed: ${message}`));
      if (mine()) this.crashed(message);
    });
    const remote = wrap<QemuWorkerApi>(worker);
    const listener: WorkerListener = {
      serial: (bytes) => {
        if (!mine()) return;
        this.serial.append(bytes);
        this.serialEvents.emit(bytes);
      },
      monitor: (bytes) => mine() && this.monitorEvents.emit(bytes),
      status: (status) => mine() && this.setStatus(status),
      progress: (p) => mine() && this.progressEvents.emit(p),
      liveUpdate: (result) => {
        if (!mine()) return;
        this.updates.push(result);
        this.updateEvents.emit(result);
      },
      log: (line) => {
        if (!mine()) return;
        this.lastLog = line;
        this.logEvents.emit(line);
      },
    };
    try {
      await Promise.race([remote.init({ artifactsBase: this.deps.artifactsBase, faults: this.deps.faults ?? [] }, proxy(listener)), failed]);
    } catch (e) {
      if (!now) worker.terminate(); // else crashed() ended it
      throw e;
    }
    if (now) this.remote = remote;
    return { worker, remote, failed };
  }

  /** Makes a spawned worker the page's: its events count from now on. */
  private async adopt(s: Spawned): Promise<Remote<QemuWorkerApi>> {
    this.worker = s.worker;
    this.remote = s.remote;
    // A new worker counts its status from 0 again; its first status
    // events came before it was adopted, so ask.
    this.current = { ...this.current, seq: -1 };
    this.setStatus(await s.remote.status());
    return s.remote;
  }

  private crashed(message: string): void {
    const last = this.lastLog ? `; QEMU's last words: ${this.lastLog}` : '';
    const error: ErrorInfo = { code: 'worker-crashed', message: `the QEMU worker failed: ${message}${last}. Boot again or reload the page` };
    this.setStatus({ ...this.current, seq: this.current.seq + 1, state: 'error', error });
    this.serial.cancel(new PlaygroundError(error.code, error.message));
    this.dispose();
  }

  /** Applies a status unless a newer one is already known; returns the current one. */
  private setStatus(status: Status): Status {
    if (status.seq < this.current.seq) return this.status();
    if (status.seq === this.current.seq && status.state === this.current.state) return this.status();
    const wasUp = ['booting', 'running', 'paused'].includes(this.current.state);
    this.current = { ...status, argv: [...status.argv] };
    if (wasUp && (status.state === 'stopped' || status.state === 'error')) {
      this.serial.cancel(new PlaygroundError(status.error?.code ?? 'qemu-exited', status.error?.message ?? `QEMU ${status.state}`));
    }
    this.statusEvents.emit(this.status());
    return this.status();
  }
}
