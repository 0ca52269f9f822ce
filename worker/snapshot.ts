// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The snapshot file: a running VM saved by QEMU's own migration to a file,
// to download, keep and restore later (issue 13). One file:
//
//   CPR-PLAYGROUND-SNAPSHOT 1\n          the magic line, with the format
//   {"guest":"arm","build":...}\n        a JSON header, one line
//   <payload>                            gzip of QEMU's migration stream
//
// The header says what the VM was (guest, build, RAM, QEMU's arguments)
// and carries the payload's length and sha256. A file is checked whole
// before anything is done with it, so QEMU's loader never sees bytes whose
// checksum failed, and a running guest is never touched for a bad file.
import { GUESTS, PlaygroundError, type SnapshotInfo } from './api';

export type { SnapshotInfo } from './api';

export const SNAPSHOT_MAGIC = 'CPR-PLAYGROUND-SNAPSHOT';
export const SNAPSHOT_FORMAT = 1;
/** The header line is small; a file whose first 64 KiB hold no header is not ours. */
const MAX_HEADER_BYTES = 64 * 1024;

interface SnapshotHeader extends SnapshotInfo {
  payload: { encoding: 'gzip'; bytes: number; sha256: string };
}

function bad(why: string): PlaygroundError {
  return new PlaygroundError('bad-snapshot', `not a usable snapshot: ${why}; nothing was changed`);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Input for a (de)compressor in pieces of this size: it works through a
 * big file a piece at a time instead of holding it all at once. */
const PIECE_BYTES = 4 * 2 ** 20;

/** `bytes` as a stream of views into them: nothing is copied (a Blob of
 * them would copy the whole file first). */
function pieces(bytes: Uint8Array): ReadableStream<BufferSource> {
  let at = 0;
  return new ReadableStream<BufferSource>(
    {
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.subarray(at, at + PIECE_BYTES) as Uint8Array<ArrayBuffer>);
        at += PIECE_BYTES;
      },
    },
    { highWaterMark: 0 },
  );
}

/** Hands each chunk of `stream` to `each`; if `each` throws, the stream is
 * cancelled and the error goes on. */
async function drain(stream: ReadableStream<Uint8Array>, each: (chunk: Uint8Array) => void): Promise<void> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    try {
      each(value);
    } catch (e) {
      await reader.cancel(e).catch(() => undefined);
      throw e;
    }
  }
}

/** The decompressed state ran past the size its header gives. */
class TooLong extends Error {
  constructor(readonly atLeast: number) {
    super(`at least ${atLeast} bytes`);
  }
}

/** A snapshot file of QEMU's migration stream `state`. */
export async function writeSnapshot(info: Omit<SnapshotInfo, 'stateBytes' | 'createdAt'>, state: Uint8Array, now = new Date()): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let bytes = 0;
  await drain(pieces(state).pipeThrough(new CompressionStream('gzip')), (c) => {
    parts.push(c);
    bytes += c.length;
  });
  const headOf = (sha256: string): Uint8Array => {
    const header: SnapshotHeader = { ...info, createdAt: now.toISOString(), stateBytes: state.length, payload: { encoding: 'gzip', bytes, sha256 } };
    return new TextEncoder().encode(`${SNAPSHOT_MAGIC} ${SNAPSHOT_FORMAT}\n${JSON.stringify(header)}\n`);
  };
  // The compressed pieces go straight to their place in the file and are
  // hashed there, not gathered into a payload and copied once more: the
  // header's length does not depend on the digest (always 64 hex digits).
  const start = headOf('0'.repeat(64)).length;
  const file = new Uint8Array(start + bytes);
  let at = start;
  for (const p of parts.splice(0)) {
    file.set(p, at);
    at += p.length;
  }
  file.set(headOf(await sha256(file.subarray(start))));
  return file;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((a) => typeof a === 'string');
}

/** Checks a header's fields one by one: the file is external input. */
function checkHeader(h: unknown): SnapshotHeader {
  if (typeof h !== 'object' || h === null) throw bad('its header is not a JSON object');
  const o = h as Record<string, unknown>;
  if (typeof o.guest !== 'string' || !(GUESTS as readonly string[]).includes(o.guest)) {
    throw bad(`it is of guest ${JSON.stringify(o.guest)}, and this page has ${GUESTS.join(', ')}`);
  }
  if (typeof o.build !== 'string' || !/^qemu-system-[\w-]+@[\w.-]+$/.test(o.build)) throw bad(`its build ${JSON.stringify(o.build)} is not a build name`);
  if (typeof o.ramMiB !== 'number' || !Number.isInteger(o.ramMiB) || o.ramMiB <= 0) throw bad(`its RAM size ${JSON.stringify(o.ramMiB)} is not a number of MiB`);
  if (!isStringArray(o.argv) || o.argv.includes('-incoming')) throw bad('its QEMU arguments are not a list of strings without -incoming');
  if (typeof o.stateBytes !== 'number' || !Number.isInteger(o.stateBytes) || o.stateBytes <= 0) throw bad('it names no state size');
  const p = o.payload as Record<string, unknown> | undefined;
  if (!p || p.encoding !== 'gzip' || typeof p.bytes !== 'number' || typeof p.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.sha256)) {
    throw bad('its header does not describe the payload (encoding, bytes, sha256)');
  }
  return o as unknown as SnapshotHeader;
}

/** A snapshot file checked whole: its header, and QEMU's migration stream. */
export async function readSnapshot(file: Uint8Array): Promise<{ info: SnapshotInfo; state: Uint8Array }> {
  const probe = new TextDecoder().decode(file.subarray(0, Math.min(file.length, MAX_HEADER_BYTES)));
  const first = probe.indexOf('\n');
  const magic = first < 0 ? probe.slice(0, 40) : probe.slice(0, first);
  if (!magic.startsWith(`${SNAPSHOT_MAGIC} `)) throw bad('it does not start with the snapshot magic line (is it a snapshot saved by the playground?)');
  const format = Number(magic.slice(SNAPSHOT_MAGIC.length + 1));
  if (format !== SNAPSHOT_FORMAT) throw bad(`it is of format ${magic.slice(SNAPSHOT_MAGIC.length + 1)}, this page reads format ${SNAPSHOT_FORMAT}`);
  const second = probe.indexOf('\n', first + 1);
  if (second < 0) throw bad('its header line is cut off');
  let json: unknown;
  try {
    json = JSON.parse(probe.slice(first + 1, second));
  } catch {
    throw bad('its header is not JSON');
  }
  const header = checkHeader(json);
  const start = new TextEncoder().encode(probe.slice(0, second + 1)).length;
  const payload = file.subarray(start);
  if (payload.length !== header.payload.bytes) {
    throw bad(`it is truncated or padded: the payload has ${payload.length} bytes, the header says ${header.payload.bytes}`);
  }
  if ((await sha256(payload)) !== header.payload.sha256) throw bad('its payload does not match its sha256 (the file is corrupted)');
  // Straight into a buffer of the size the header gives: one copy of the
  // state, and a payload that inflates past it is stopped there.
  let state: Uint8Array;
  try {
    state = new Uint8Array(header.stateBytes);
  } catch {
    throw bad(`its state of ${header.stateBytes} bytes is more than this page can hold`);
  }
  let at = 0;
  try {
    await drain(pieces(payload).pipeThrough(new DecompressionStream('gzip')), (c) => {
      if (at + c.length > state.length) throw new TooLong(at + c.length);
      state.set(c, at);
      at += c.length;
    });
  } catch (e) {
    if (e instanceof TooLong) throw bad(`its state has at least ${e.atLeast} bytes, the header says ${header.stateBytes}`);
    throw bad(`its payload does not decompress (${e instanceof Error ? e.message : String(e)})`);
  }
  if (at !== header.stateBytes) throw bad(`its state has ${at} bytes, the header says ${header.stateBytes}`);
  const { payload: _, ...info } = header;
  return { info, state };
}
