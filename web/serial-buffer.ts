// Runs on the page's main thread (and in Node for unit tests); uses no DOM.
//
// Everything the guest printed on its serial console, as text, with
// waiters for patterns. Offsets are absolute (characters since the page
// loaded), so `from` stays valid when old text is dropped.
import { PlaygroundError } from '../worker/api';

export interface WaitOptions {
  /** Only match text at or after this offset (see `end`). [0] */
  from?: number;
}

interface Waiter {
  pattern: RegExp;
  from: number;
  resolve(match: string): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Turns a string pattern into a literal RegExp. */
export function toRegExp(pattern: string | RegExp): RegExp {
  if (pattern instanceof RegExp) return new RegExp(pattern.source, pattern.flags.replace('g', ''));
  return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

export class SerialBuffer {
  private text = '';
  /** Characters dropped from the front. */
  private base = 0;
  private readonly decoder = new TextDecoder();
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly limit = 4 * 1024 * 1024) {}

  /** Offset just past the last character received. */
  get end(): number {
    return this.base + this.text.length;
  }

  /** Text kept since `from` (default: all kept text), '\r' removed. */
  read(from = 0): string {
    return this.text.slice(Math.max(0, from - this.base)).replace(/\r/g, '');
  }

  append(bytes: Uint8Array): string {
    const chunk = this.decoder.decode(bytes, { stream: true });
    this.text += chunk;
    if (this.text.length > this.limit) {
      const drop = this.text.length - this.limit / 2;
      this.text = this.text.slice(drop);
      this.base += drop;
    }
    for (const w of this.waiters) this.check(w);
    return chunk;
  }

  waitFor(pattern: string | RegExp, timeoutMs: number, options: WaitOptions = {}): Promise<string> {
    const re = toRegExp(pattern);
    return new Promise<string>((resolve, reject) => {
      const waiter: Waiter = {
        pattern: re,
        from: options.from ?? 0,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new PlaygroundError(
              'timeout',
              `serial output did not match ${re} within ${timeoutMs} ms; last output: ${JSON.stringify(this.read().slice(-200))}`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
      this.check(waiter);
    });
  }

  /** Fails every waiter (QEMU stopped). */
  cancel(reason: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(reason);
    }
    this.waiters.clear();
  }

  private check(w: Waiter): void {
    const m = w.pattern.exec(this.read(w.from));
    if (!m) return;
    clearTimeout(w.timer);
    this.waiters.delete(w);
    w.resolve(m[0]);
  }
}
