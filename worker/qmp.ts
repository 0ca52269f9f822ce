// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The host's control channel to one QEMU: a QMP client over the byte
// stream of QEMU's third console (worker/qemu/consoles.ts). QEMU greets,
// the client negotiates capabilities, then commands go out as JSON lines
// with an id and come back as {"return"} or {"error": {class, desc}};
// events ({"event", "data", "timestamp"}) arrive in between. One client
// per QEMU instance: a live update starts a new QEMU, and with it a new
// greeting and a new client.
import { DEFAULT_MONITOR_TIMEOUT_MS, PlaygroundError } from './api';

/** QMP's error reply: QEMU's own class and words. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(desc);
    this.name = 'QmpError';
  }
}

/** The events the host acts on; anything else arrives as 'other'.
 * `at` is QEMU's own timestamp (wall clock ms). */
export type QmpEvent =
  | { kind: 'stop'; at: number }
  | { kind: 'resume'; at: number }
  | { kind: 'reset'; at: number }
  | { kind: 'shutdown'; at: number }
  | { kind: 'migration'; at: number; status: string }
  | { kind: 'other'; at: number; name: string };

/** query-status's answer. */
export interface QmpStatus {
  running: boolean;
  status: string;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A QMP event message as a QmpEvent. */
export function toEvent(msg: Json): QmpEvent {
  const ts = isObject(msg.timestamp) ? msg.timestamp : {};
  const at = Number(ts.seconds ?? 0) * 1000 + Number(ts.microseconds ?? 0) / 1000;
  const data = isObject(msg.data) ? msg.data : {};
  const name = String(msg.event);
  switch (name) {
    case 'STOP':
      return { kind: 'stop', at };
    case 'RESUME':
      return { kind: 'resume', at };
    case 'RESET':
      return { kind: 'reset', at };
    case 'SHUTDOWN':
      return { kind: 'shutdown', at };
    case 'MIGRATION':
      return { kind: 'migration', at, status: String(data.status ?? '') };
    default:
      return { kind: 'other', at, name };
  }
}

export class QmpClient {
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private negotiated = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Commands asked for before the greeting: sent once negotiated. */
  private readonly queued: { id: number; line: string }[] = [];
  private readonly listeners = new Set<(e: QmpEvent) => void>();
  /** The rejections of waitFor()s still waiting. */
  private readonly closeWaiters = new Set<(e: Error) => void>();
  private closed: Error | null = null;
  /** qmp_capabilities was sent. */
  private asked = false;
  private greet!: (at: number) => void;
  /** Resolves (wall clock ms) when QEMU has greeted and capabilities are negotiated. */
  readonly ready: Promise<number>;

  constructor(
    private readonly write: (bytes: Uint8Array) => void,
    private readonly clock: () => number = () => performance.timeOrigin + performance.now(),
  ) {
    this.ready = new Promise<number>((resolve) => (this.greet = resolve));
  }

  /** Feed QMP's output bytes, in order. */
  feed(bytes: Uint8Array): void {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line !== '') this.receive(line);
    }
  }

  /** Runs a QMP command; rejects with QmpError (QEMU refused it), or a
   * PlaygroundError (timeout, QEMU gone). */
  execute<T = unknown>(command: string, args?: Json, timeoutMs = DEFAULT_MONITOR_TIMEOUT_MS): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    const line = JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id });
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new PlaygroundError('monitor-timeout', `QMP command ${command} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      if (this.negotiated) this.send(line);
      else this.queued.push({ id, line });
    });
  }

  /** query-status, typed. */
  status(timeoutMs?: number): Promise<QmpStatus> {
    return this.execute<QmpStatus>('query-status', undefined, timeoutMs);
  }

  /** Calls `listener` for every event; returns the way to stop. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first event that `match` accepts (its value), or a rejection
   * after timeoutMs or when the channel closes. */
  waitFor<T>(match: (e: QmpEvent) => T | undefined, timeoutMs: number, what: string): { promise: Promise<T>; cancel(): void } {
    let off = (): void => undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let fail: (e: Error) => void = () => undefined;
    const promise = new Promise<T>((resolve, reject) => {
      fail = reject;
      if (this.closed) return reject(this.closed);
      off = this.onEvent((e) => {
        const v = match(e);
        if (v === undefined) return;
        cancel();
        resolve(v);
      });
      this.closeWaiters.add(fail);
      timer = setTimeout(() => {
        cancel();
        reject(new PlaygroundError('timeout', `${what} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    promise.catch(() => undefined);
    const cancel = (): void => {
      off();
      clearTimeout(timer);
      this.closeWaiters.delete(fail);
    };
    return { promise, cancel };
  }

  /** QEMU is gone: every command in flight and every wait fails with `reason`. */
  close(reason: Error): void {
    if (this.closed) return;
    this.closed = reason;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(reason);
    }
    this.pending.clear();
    this.queued.length = 0;
    for (const fail of [...this.closeWaiters]) fail(reason);
    this.closeWaiters.clear();
    this.listeners.clear();
  }

  /**
   * Asks for command mode now, without waiting for the greeting. QEMU
   * reads the request when its main loop starts, so the channel is
   * negotiated by then; a new QEMU with an incoming state loads it and
   * runs the VM in that loop's first turns, and QMP sends events (RESUME:
   * when the pause ended) only to a negotiated client. Once per client.
   */
  negotiate(): void {
    if (this.asked || this.closed) return;
    this.asked = true;
    this.send(JSON.stringify({ execute: 'qmp_capabilities', id: 0 }));
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  private receive(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not QMP (nothing else writes to this chardev)
    }
    if (!isObject(msg)) return;
    if ('QMP' in msg) {
      // The greeting: negotiate (unless asked already), then send what
      // waited for it.
      this.negotiate();
      return;
    }
    if ('event' in msg) {
      const e = toEvent(msg);
      for (const l of [...this.listeners]) l(e);
      return;
    }
    const id = typeof msg.id === 'number' ? msg.id : -1;
    if (id === 0) {
      this.negotiated = true;
      for (const q of this.queued.splice(0)) if (this.pending.has(q.id)) this.send(q.line);
      this.greet(this.clock());
      return;
    }
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg && isObject(msg.error)) {
      p.reject(new QmpError(p.command, String(msg.error.class ?? 'GenericError'), String(msg.error.desc ?? 'error')));
    } else {
      p.resolve(msg.return);
    }
  }

  private send(line: string): void {
    this.write(new TextEncoder().encode(`${line}\n`));
  }
}
