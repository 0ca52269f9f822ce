// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// What the host tells the page, through the listener it gave init(): the
// Status (each change numbered and sent whole), progress, and the output
// of the guest and of QEMU. Calls are fire-and-forget, so that a closed
// page cannot break QEMU; serial output is batched, because QEMU's UARTs
// write a byte at a time and a message each would swamp the page.
import { PlaygroundError, toErrorInfo, type Progress, type Status, type WorkerListener } from './api';
import { concatBytes } from './backend';

/** The page's listener as seen through Comlink: calls may return promises. */
export type ListenerLike = {
  [K in keyof WorkerListener]: (...args: Parameters<WorkerListener[K]>) => unknown;
};

const SERIAL_FLUSH_MS = 8;

export class PageLink {
  private listener: ListenerLike | null = null;
  private current: Status = { seq: 0, state: 'idle', guest: null, build: null, argv: [], ramMiB: null, accel: null, error: null };
  private serialOut: Uint8Array[] = [];
  private serialTimer: ReturnType<typeof setTimeout> | null = null;

  /** From now on the page hears through `listener`; it gets the Status first. */
  connect(listener: WorkerListener | ListenerLike): void {
    this.listener = listener as ListenerLike;
    this.emitStatus();
  }

  /** Where the host is in a session's lifecycle, as the page sees it. */
  get state(): Status['state'] {
    return this.current.state;
  }

  /** A copy of the Status: the page's to keep. */
  status(): Status {
    return { ...this.current, argv: [...this.current.argv], error: this.current.error ? { ...this.current.error } : null };
  }

  set(patch: Partial<Status>): void {
    this.current = { ...this.current, ...patch, seq: this.current.seq + 1 };
    this.emitStatus();
  }

  /** Records an error in the status and returns it as a PlaygroundError. */
  fail(e: unknown): PlaygroundError {
    const info = toErrorInfo(e);
    const err = e instanceof PlaygroundError ? e : new PlaygroundError(info.code, info.message);
    this.set({ state: 'error', error: info });
    return err;
  }

  progress(p: Progress): void {
    this.call('progress', p);
  }

  /** Guest serial output: sent within SERIAL_FLUSH_MS, with what follows it. */
  serial(bytes: Uint8Array): void {
    this.serialOut.push(bytes);
    this.serialTimer ??= setTimeout(() => this.flushSerial(), SERIAL_FLUSH_MS);
  }

  /** Sends the serial output held so far (before a session ends, say). */
  flushSerial(): void {
    this.serialTimer = null;
    const chunks = this.serialOut;
    this.serialOut = [];
    if (chunks.length === 0) return;
    this.call('serial', concatBytes(chunks));
  }

  /** Listener calls are fire-and-forget: a closed page must not break QEMU. */
  call<K extends keyof WorkerListener>(name: K, ...args: Parameters<WorkerListener[K]>): void {
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

  private emitStatus(): void {
    this.call('status', this.status());
  }
}
