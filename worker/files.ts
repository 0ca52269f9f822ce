// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// Files in and out of the guest: the host's end of the file channel, a
// virtio serial port named org.cpr-playground.files that the guest's
// cpr-files agent serves (wasm/guest/cpr-files has the protocol). One
// request at a time: a line out, a line back, file bytes after a put line
// or between a get's "file" and "end" lines. The channel is guest RAM and
// the host's queue, both of which a live update carries over, so a
// transfer in flight goes on after the pause (docs/files.md).
import { PlaygroundError } from './api';

/** The largest file putFile() and getFile() move. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** The agent answers a ping at once when it runs (it may take a while in a
 * guest busy under the interpreter). */
export const PING_TIMEOUT_MS = 15_000;
/** A transfer may take this long plus a second per 128 KiB (the slowest
 * guest, x86_64 under the interpreter, moves ~0.5 MiB/s; docs/files.md). */
const TRANSFER_BASE_MS = 30_000;
const TRANSFER_MS_PER_BYTE = 1000 / (128 * 1024);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Why a path cannot name a guest file, or undefined. */
export function guestPathProblem(path: string): string | undefined {
  if (typeof path !== 'string' || path === '') return 'the path must be a non-empty string';
  if (!path.startsWith('/')) return `the path must be absolute (start with "/"), got "${path}"`;
  if (path.endsWith('/')) return `the path names a directory, not a file: "${path}"`;
  if (/[\0\n\r]/.test(path)) return 'the path must not contain NUL or line breaks';
  if (encoder.encode(path).length > 4000) return 'the path is longer than 4000 bytes';
  return undefined;
}

type Reply =
  | { kind: 'line'; words: string[] }
  | { kind: 'file'; bytes: Uint8Array };

interface Pending {
  id: number;
  /** A get's bytes, once its "file SIZE" line came. */
  receiving: { bytes: Uint8Array; at: number } | null;
  done(reply: Reply): void;
}

export class FileChannel {
  private nextId = 1;
  private pending: Pending | null = null;
  private line: number[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  /** The agent answered in this session (no ping needed again). */
  private agentSeen = false;
  private closed: PlaygroundError | null = null;

  /** `send`: bytes to the guest's port (through ConsoleInput). */
  constructor(private readonly send: (bytes: Uint8Array) => void) {}

  /** Writes `bytes` to the guest file `path` (parents made, replaced
   * whole); resolves with the size the guest reports. */
  put(path: string, bytes: Uint8Array): Promise<number> {
    const problem = guestPathProblem(path);
    if (problem) return Promise.reject(new PlaygroundError('bad-options', `putFile: ${problem}`));
    if (bytes.length > MAX_FILE_BYTES) {
      return Promise.reject(new PlaygroundError('bad-options', `putFile: the file has ${bytes.length} bytes; the limit is ${MAX_FILE_BYTES} (64 MiB)`));
    }
    return this.serially(async () => {
      await this.ensureAgent();
      const id = this.nextId++;
      const reply = this.request(id, transferTimeout(bytes.length), `putFile ${path}`);
      this.send(encoder.encode(`cpr1 put ${id} ${bytes.length} ${path}\n`));
      if (bytes.length > 0) this.send(bytes);
      const words = expectLine(await reply);
      if (words[0] === 'ok' && Number(words[1]) === bytes.length) return bytes.length;
      if (words[0] === 'ok') throw new PlaygroundError('file-failed', `putFile ${path}: the guest has ${words[1]} bytes, not ${bytes.length}`);
      throw new PlaygroundError('file-failed', `putFile ${path}: ${guestError(words)}`);
    });
  }

  /** The bytes of the guest file `path`. */
  get(path: string): Promise<Uint8Array> {
    const problem = guestPathProblem(path);
    if (problem) return Promise.reject(new PlaygroundError('bad-options', `getFile: ${problem}`));
    return this.serially(async () => {
      await this.ensureAgent();
      const id = this.nextId++;
      const reply = this.request(id, transferTimeout(MAX_FILE_BYTES), `getFile ${path}`);
      this.send(encoder.encode(`cpr1 get ${id} ${MAX_FILE_BYTES} ${path}\n`));
      const got = await reply;
      if (got.kind === 'file') return got.bytes;
      throw new PlaygroundError('file-failed', `getFile ${path}: ${guestError(got.words)}`);
    });
  }

  /** Output of the guest's port. */
  feed(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length) {
      const p = this.pending;
      const rx = p?.receiving;
      if (p && rx && rx.at < rx.bytes.length) {
        const n = Math.min(rx.bytes.length - rx.at, bytes.length - i);
        rx.bytes.set(bytes.subarray(i, i + n), rx.at);
        rx.at += n;
        i += n;
        continue;
      }
      const nl = bytes.indexOf(10, i);
      const end = nl < 0 ? bytes.length : nl;
      // A line longer than any answer is the rest of an abandoned transfer.
      if (this.line.length < 8192) for (let k = i; k < end; k++) this.line.push(bytes[k]!);
      i = end;
      if (nl < 0) break;
      i = nl + 1;
      const text = decoder.decode(new Uint8Array(this.line));
      this.line = [];
      this.onLine(text);
    }
  }

  /** The session ended: pending and later calls fail with `error`. */
  close(error: PlaygroundError): void {
    this.closed = error;
    const p = this.pending;
    this.pending = null;
    p?.done({ kind: 'line', words: ['closed'] });
  }

  private onLine(text: string): void {
    const words = text.split(' ');
    if (words[0] !== 'cpr1') return;
    this.agentSeen = true;
    const p = this.pending;
    if (!p || Number(words[1]) !== p.id) return; // a late answer to a request given up on
    const rest = words.slice(2);
    if (rest[0] === 'file' && !p.receiving) {
      const size = Number(rest[1]);
      if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_BYTES) {
        this.finish(p, { kind: 'line', words: ['error', `the guest announced ${rest[1]} bytes`] });
        return;
      }
      p.receiving = { bytes: new Uint8Array(size), at: 0 };
      return;
    }
    if (rest[0] === 'end' && p.receiving) {
      this.finish(p, { kind: 'file', bytes: p.receiving.bytes });
      return;
    }
    this.finish(p, { kind: 'line', words: rest });
  }

  private finish(p: Pending, reply: Reply): void {
    if (this.pending === p) this.pending = null;
    p.done(reply);
  }

  private async ensureAgent(): Promise<void> {
    if (this.agentSeen) return;
    const id = this.nextId++;
    const reply = this.request(id, PING_TIMEOUT_MS, 'the file channel');
    this.send(encoder.encode(`cpr1 ping ${id}\n`));
    await reply.catch((e: unknown) => {
      if (e instanceof PlaygroundError && e.code === 'timeout') {
        throw new PlaygroundError(
          'file-failed',
          `the guest's file agent did not answer within ${PING_TIMEOUT_MS / 1000} s: the guest may still be booting, or its agent (/bin/cpr-files, started by /init) is not running`,
        );
      }
      throw e;
    });
  }

  /** Waits for the answer to request `id`. */
  private request(id: number, timeoutMs: number, what: string): Promise<Reply> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending?.id === id) this.pending = null;
        reject(new PlaygroundError('timeout', `${what}: the guest did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending = {
        id,
        receiving: null,
        done: (reply) => {
          clearTimeout(timer);
          if (this.closed) reject(this.closed);
          else resolve(reply);
        },
      };
    });
  }

  private serially<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function transferTimeout(bytes: number): number {
  return TRANSFER_BASE_MS + Math.round(bytes * TRANSFER_MS_PER_BYTE);
}

function expectLine(reply: Reply): string[] {
  if (reply.kind === 'line') return reply.words;
  throw new PlaygroundError('file-failed', 'the guest sent a file where an answer was due');
}

function guestError(words: string[]): string {
  return words[0] === 'error' ? words.slice(1).join(' ') || 'the guest refused' : `unexpected answer "${words.join(' ')}"`;
}
