// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The snapshot file: a running VM saved, to download, keep and restore
// later (issue 13). One file:
//
//   CPR-PLAYGROUND-SNAPSHOT 2\n          the magic line, with the format
//   {"guest":"arm","build":...}\n        a JSON header, one line
//   <payload>                            the VM's state, gzip'd or raw
//
// Format 2 (a VM on the live-update layout, what the page saves): QEMU's
// device state from a cpr-exec migration, then guest RAM as the layout
// keeps it (ram-image.ts: the memfd regions, zero pages left out). A
// restore puts RAM back where it was and QEMU loads only the device
// state, as after a live update. Format 1 (a VM without the layout, and
// files saved before format 2): QEMU's whole migration stream, RAM
// included; the page still reads it.
//
// The header says what the VM was (guest, build, RAM, QEMU's arguments)
// and carries the payload's length and sha256. A file is checked whole
// before anything is done with it, so QEMU's loader never sees bytes whose
// checksum failed, and a running guest is never touched for a bad file.
import { GUESTS, PlaygroundError, type SnapshotInfo } from './api';
import { concatBytes, ramImageProblem, type ImageRegion, type OpenMemfd, type RamImage } from './backend';

export type { SnapshotInfo } from './api';

export const SNAPSHOT_MAGIC = 'CPR-PLAYGROUND-SNAPSHOT';
/** QEMU's migration stream, RAM included. */
export const STREAM_FORMAT = 1;
/** Device state and a RAM image. */
export const IMAGE_FORMAT = 2;
/** Payloads up to this size are gzip'd; bigger ones (a guest with its RAM
 * filled) are stored as they are: gzip in the browser takes ~10 s per
 * GiB and gains little on the RAM of a busy guest. */
export const GZIP_UP_TO = 64 * 2 ** 20;
/** The header line is small; a file whose first 64 KiB hold no header is not ours. */
const MAX_HEADER_BYTES = 64 * 1024;

type Encoding = 'gzip' | 'raw';

interface SnapshotHeader extends SnapshotInfo {
  /** Format 2: the RAM image after the device state (its data's bytes). */
  image?: { open: OpenMemfd[]; env: Record<string, string>; regions: ImageRegion[]; bytes: number };
  /** Format 2: `sha256` is that of the sha256 digests of the payload's
   * pieces of `piece` bytes (the last one shorter), one after the other. */
  payload: { encoding: Encoding; bytes: number; sha256: string; piece?: number };
}

/** What a snapshot holds: QEMU's state (the whole migration stream, or
 * with `image` the device state alone) and guest RAM as a RAM image. */
export interface SnapshotContent {
  state: Uint8Array;
  image?: RamImage;
}

function bad(why: string): PlaygroundError {
  return new PlaygroundError('bad-snapshot', `not a usable snapshot: ${why}; nothing was changed`);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The piece size of format 2's hash. WebCrypto copies what it hashes; a
 * copy this small reuses the same memory from piece to piece, where one
 * copy of a whole 1 GiB payload is fresh memory, which costs ~4 s per GiB
 * on the machines here (a page fault per 4 KiB) before it is even hashed.
 */
export const HASH_PIECE = 512 * 1024;

/** sha256 of the sha256 digests of `parts`' bytes, one after the other,
 * in pieces of `piece` bytes; a piece across two parts is gathered first. */
async function piecesSha256(parts: readonly Uint8Array[], piece: number): Promise<string> {
  const ends: number[] = [];
  for (const p of parts) ends.push((ends.at(-1) ?? 0) + p.length);
  const total = ends.at(-1) ?? 0;
  /** The bytes [from, to) of the parts' concatenation. */
  const range = (from: number, to: number): Uint8Array => {
    const views: Uint8Array[] = [];
    parts.forEach((p, i) => {
      const start = ends[i]! - p.length;
      if (start < to && ends[i]! > from) views.push(p.subarray(Math.max(0, from - start), Math.min(p.length, to - start)));
    });
    return views.length === 1 ? views[0]! : concatBytes(views);
  };
  const digests = new Uint8Array(Math.ceil(total / piece) * 32);
  for (let i = 0; i * piece < total; i++) {
    const bytes = range(i * piece, Math.min(total, (i + 1) * piece));
    digests.set(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)), i * 32);
  }
  return sha256(digests);
}

/** Input for a (de)compressor in pieces of this size: it works through a
 * big file a piece at a time instead of holding it all at once. */
const PIECE_BYTES = 4 * 2 ** 20;

/** `parts` one after the other as a stream of views into them: nothing
 * is copied (a Blob of them would copy the whole file first). */
function pieces(...parts: Uint8Array[]): ReadableStream<BufferSource> {
  let part = 0;
  let at = 0;
  return new ReadableStream<BufferSource>(
    {
      pull(c) {
        while (part < parts.length && at >= parts[part]!.length) {
          part++;
          at = 0;
        }
        if (part >= parts.length) return c.close();
        c.enqueue(parts[part]!.subarray(at, at + PIECE_BYTES) as Uint8Array<ArrayBuffer>);
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

/** A snapshot file of `content`: format 2 with a RAM image, else 1. A
 * Blob of its parts: a Blob is what the page downloads and keeps, and
 * making it copies the parts once, where a file in one buffer first would
 * copy them twice. */
export async function writeSnapshot(
  info: Omit<SnapshotInfo, 'stateBytes' | 'createdAt'>,
  content: SnapshotContent,
  now = new Date(),
  gzipUpTo = GZIP_UP_TO,
): Promise<Blob> {
  const { state, image } = content;
  const raw = state.length + (image?.data.length ?? 0);
  // Format 1 is always gzip: readers of it know no other encoding.
  const encoding: Encoding = raw <= gzipUpTo || !image ? 'gzip' : 'raw';
  let parts: Uint8Array[] = [];
  let bytes = 0;
  if (encoding === 'gzip') {
    await drain(pieces(state, ...(image ? [image.data] : [])).pipeThrough(new CompressionStream('gzip')), (c) => {
      parts.push(c);
      bytes += c.length;
    });
    // One buffer to hash (format 1 hashes the payload whole).
    parts = [concatBytes(parts)];
  } else {
    parts = [state, ...(image ? [image.data] : [])];
    bytes = raw;
  }
  const digest = image ? await piecesSha256(parts, HASH_PIECE) : await sha256(parts[0]!);
  const header: SnapshotHeader = {
    ...info,
    createdAt: now.toISOString(),
    stateBytes: state.length,
    ...(image ? { image: { open: image.open, env: image.env, regions: image.regions, bytes: image.data.length } } : {}),
    payload: { encoding, bytes, sha256: digest, ...(image ? { piece: HASH_PIECE } : {}) },
  };
  const head = new TextEncoder().encode(`${SNAPSHOT_MAGIC} ${image ? IMAGE_FORMAT : STREAM_FORMAT}\n${JSON.stringify(header)}\n`);
  return new Blob([head, ...parts] as Uint8Array<ArrayBuffer>[]);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((a) => typeof a === 'string');
}

/** Checks a header's fields one by one: the file is external input. */
function checkHeader(h: unknown, format: number): SnapshotHeader {
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
  const encodings: readonly unknown[] = format === STREAM_FORMAT ? ['gzip'] : ['gzip', 'raw'];
  if (!p || !encodings.includes(p.encoding) || typeof p.bytes !== 'number' || typeof p.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.sha256)) {
    throw bad('its header does not describe the payload (encoding, bytes, sha256)');
  }
  if (format === IMAGE_FORMAT) {
    if (p.piece !== HASH_PIECE) throw bad(`its payload is hashed in pieces of ${JSON.stringify(p.piece)} bytes, this page reads ${HASH_PIECE}`);
    const i = o.image as Record<string, unknown> | undefined;
    if (!i || !Array.isArray(i.open) || !Array.isArray(i.regions) || typeof i.env !== 'object' || i.env === null || !Number.isSafeInteger(i.bytes) || (i.bytes as number) < 0) {
      throw bad('its header does not describe its RAM image (open, env, regions, bytes)');
    }
    if (!i.regions.every((r) => typeof r === 'object' && r !== null) || !i.open.every((f) => typeof f === 'object' && f !== null)) {
      throw bad('its RAM image lists something that is not a region or an fd');
    }
  } else if (o.image !== undefined) throw bad('a format 1 file has no RAM image');
  return o as unknown as SnapshotHeader;
}

/** A snapshot file checked whole: its header, QEMU's state and the RAM image. */
export async function readSnapshot(file: Uint8Array): Promise<{ info: SnapshotInfo } & SnapshotContent> {
  const probe = new TextDecoder().decode(file.subarray(0, Math.min(file.length, MAX_HEADER_BYTES)));
  const first = probe.indexOf('\n');
  const magic = first < 0 ? probe.slice(0, 40) : probe.slice(0, first);
  if (!magic.startsWith(`${SNAPSHOT_MAGIC} `)) throw bad('it does not start with the snapshot magic line (is it a snapshot saved by the playground?)');
  const format = Number(magic.slice(SNAPSHOT_MAGIC.length + 1));
  if (format !== STREAM_FORMAT && format !== IMAGE_FORMAT) {
    throw bad(`it is of format ${magic.slice(SNAPSHOT_MAGIC.length + 1)}, this page reads formats ${STREAM_FORMAT} and ${IMAGE_FORMAT}`);
  }
  const second = probe.indexOf('\n', first + 1);
  if (second < 0) throw bad('its header line is cut off');
  let json: unknown;
  try {
    json = JSON.parse(probe.slice(first + 1, second));
  } catch {
    throw bad('its header is not JSON');
  }
  const header = checkHeader(json, format);
  const start = new TextEncoder().encode(probe.slice(0, second + 1)).length;
  const payload = file.subarray(start);
  if (payload.length !== header.payload.bytes) {
    throw bad(`it is truncated or padded: the payload has ${payload.length} bytes, the header says ${header.payload.bytes}`);
  }
  const digest = format === IMAGE_FORMAT ? await piecesSha256([payload], HASH_PIECE) : await sha256(payload);
  if (digest !== header.payload.sha256) throw bad('its payload does not match its sha256 (the file is corrupted)');
  const imageBytes = header.image?.bytes ?? 0;
  const total = header.stateBytes + imageBytes;
  let content: Uint8Array;
  if (header.payload.encoding === 'raw') {
    if (payload.length !== total) throw bad(`its payload has ${payload.length} bytes, the header says ${total}`);
    content = payload;
  } else {
    content = await inflate(payload, total);
  }
  // The state goes to QEMU's worker alone in a buffer of its own (format
  // 1: the whole inflated payload already is).
  const state = header.image ? content.slice(0, header.stateBytes) : content;
  let image: RamImage | undefined;
  if (header.image) {
    image = { open: header.image.open, env: header.image.env, regions: header.image.regions, data: content.subarray(header.stateBytes) };
    const problem = ramImageProblem(image);
    if (problem) throw bad(`its RAM image does not fit the memory layout: ${problem}`);
  }
  const { payload: _, image: _image, ...info } = header;
  return { info, state, ...(image ? { image } : {}) };
}

/** A gzip payload inflated into a buffer of the size the header gives: a
 * payload that inflates past it is stopped there. */
async function inflate(payload: Uint8Array, size: number): Promise<Uint8Array> {
  let out: Uint8Array;
  try {
    out = new Uint8Array(size);
  } catch {
    throw bad(`its state of ${size} bytes is more than this page can hold`);
  }
  let at = 0;
  try {
    await drain(pieces(payload).pipeThrough(new DecompressionStream('gzip')), (c) => {
      if (at + c.length > out.length) throw new TooLong(at + c.length);
      out.set(c, at);
      at += c.length;
    });
  } catch (e) {
    if (e instanceof TooLong) throw bad(`its state has at least ${e.atLeast} bytes, the header says ${size}`);
    throw bad(`its payload does not decompress (${e instanceof Error ? e.message : String(e)})`);
  }
  if (at !== size) throw bad(`its state has ${at} bytes, the header says ${size}`);
  return out;
}
