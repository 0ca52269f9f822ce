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
// A big file is read a slice at a time, never whole: each slice is hashed
// (WebCrypto, on a thread of its own) while its RAM pages go straight into
// the fresh Memory that the restored QEMU will run on, which nothing uses
// until the whole file has passed.
import { GUESTS, PlaygroundError, type SnapshotInfo } from './api';
import { concatBytes, ImageStream, layoutBytes, ramLayoutProblem, type ImageRegion, type OpenMemfd, type RamImage, type RamLayout } from './backend';

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

/** Views of the bytes [from, to) of `parts`' concatenation, in order. */
function views(parts: readonly Uint8Array[], from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (const p of parts) {
    const end = start + p.length;
    if (start < to && end > from) out.push(p.subarray(Math.max(0, from - start), Math.min(p.length, to - start)));
    start = end;
  }
  return out;
}

function digestOf(bytes: Uint8Array): Promise<ArrayBuffer> {
  return crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
}

/** Format 2's payload is hashed and read in slices of this many pieces: a
 * slice's pieces are hashed (WebCrypto, on its own thread) while this
 * thread puts the slice's pages into guest RAM, and reads the next. */
const SLICE = 16 * HASH_PIECE;

/** The sha256 digests of a payload's pieces, gathered a slice at a time. */
class PieceHashes {
  private readonly digests: Uint8Array;
  constructor(bytes: number) {
    this.digests = new Uint8Array(Math.ceil(bytes / HASH_PIECE) * 32);
  }

  /** Hashes the slice of `parts` at payload offset `from` (a multiple of
   * HASH_PIECE); a piece across two parts is gathered first. */
  slice(parts: readonly Uint8Array[], from: number): Promise<unknown> {
    const to = from + parts.reduce((n, p) => n + p.length, 0);
    const hashed: Promise<void>[] = [];
    for (let at = from; at < to; at += HASH_PIECE) {
      const piece = views(parts, at - from, Math.min(to, at + HASH_PIECE) - from);
      hashed.push(digestOf(piece.length === 1 ? piece[0]! : concatBytes(piece)).then((d) => this.digests.set(new Uint8Array(d), (at / HASH_PIECE) * 32)));
    }
    return Promise.all(hashed);
  }

  /** sha256 of the pieces' digests, one after the other. */
  done(): Promise<string> {
    return sha256(this.digests);
  }
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
 * copy them twice (and one Blob of many slices took longer still). The
 * payload's Blob is made before it is hashed: the browser takes its bytes
 * in (in its own process) while this thread hashes, instead of when the
 * file is first read (a restore of it right after, say). */
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
  let parts: Uint8Array[] = [state, ...(image ? [image.data] : [])];
  if (encoding === 'gzip') {
    const compressed: Uint8Array[] = [];
    await drain(pieces(...parts).pipeThrough(new CompressionStream('gzip')), (c) => compressed.push(c));
    // One buffer to hash (format 1 hashes the payload whole).
    parts = [concatBytes(compressed)];
  }
  const bytes = parts.reduce((n, p) => n + p.length, 0);
  const body = new Blob(parts as Uint8Array<ArrayBuffer>[]);
  let digest: string;
  if (image) {
    const hashes = new PieceHashes(bytes);
    for (let from = 0; from < bytes; from += SLICE) await hashes.slice(views(parts, from, Math.min(bytes, from + SLICE)), from);
    digest = await hashes.done();
  } else {
    digest = await sha256(parts[0]!);
  }
  const header: SnapshotHeader = {
    ...info,
    createdAt: now.toISOString(),
    stateBytes: state.length,
    ...(image ? { image: { open: image.open, env: image.env, regions: image.regions, bytes: image.data.length } } : {}),
    payload: { encoding, bytes, sha256: digest, ...(image ? { piece: HASH_PIECE } : {}) },
  };
  const head = new TextEncoder().encode(`${SNAPSHOT_MAGIC} ${image ? IMAGE_FORMAT : STREAM_FORMAT}\n${JSON.stringify(header)}\n`);
  return new Blob([head, body]);
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

/** Where a file's bytes come from: the caller's bytes, or a Blob read a
 * slice at a time (a 1 GiB file is never in one buffer). */
interface Source {
  size: number;
  read(from: number, to: number): Promise<Uint8Array>;
  /** The bytes from `from` to the end, in slices of SLICE bytes (the last
   * one shorter); a slice is valid until the one after the next. */
  slices(from: number): AsyncGenerator<Uint8Array>;
}

function sourceOf(file: Blob | Uint8Array): Source {
  if (file instanceof Uint8Array) {
    return {
      size: file.length,
      read: async (from, to) => file.subarray(from, to),
      slices: async function* (from) {
        for (let at = from; at < file.length; at += SLICE) yield file.subarray(at, at + SLICE);
      },
    };
  }
  const unreadable = (e: unknown): PlaygroundError => bad(`it could not be read (${e instanceof Error ? e.message : String(e)})`);
  const read = async (from: number, to: number): Promise<Uint8Array> => {
    try {
      return new Uint8Array(await file.slice(from, to).arrayBuffer());
    } catch (e) {
      throw unreadable(e);
    }
  };
  return {
    size: file.size,
    read,
    slices: async function* (from) {
      let reader: ReadableStreamBYOBReader | null = null;
      try {
        reader = file.slice(from).stream().getReader({ mode: 'byob' });
      } catch {
        // A browser whose Blob streams are not byte streams: a slice
        // at a time, each in a buffer of its own.
      }
      if (!reader) {
        yield* prefetched(file.size - from, (at, to) => read(from + at, from + to));
        return;
      }
      // Read into two buffers in turn: no fresh memory per slice.
      const byob = reader;
      const buffers = [new ArrayBuffer(SLICE), new ArrayBuffer(SLICE)];
      yield* prefetched(file.size - from, async (at, to, i) => {
        let buffer = buffers[i % 2]!;
        let got = 0;
        try {
          while (got < to - at) {
            const { done, value } = await byob.read(new Uint8Array(buffer, got, to - at - got));
            if (done || !value) throw new Error('the file ended early');
            buffer = value.buffer as ArrayBuffer;
            got += value.byteLength;
          }
        } catch (e) {
          throw unreadable(e);
        }
        buffers[i % 2] = buffer;
        return new Uint8Array(buffer, 0, got);
      });
    },
  };
}

/** `bytes` bytes in slices of SLICE, each read (by `read(from, to, index)`)
 * while the one before is worked on. */
async function* prefetched(bytes: number, read: (from: number, to: number, index: number) => Promise<Uint8Array>): AsyncGenerator<Uint8Array> {
  const start = (i: number): Promise<Uint8Array> => {
    const p = read(i * SLICE, Math.min(bytes, (i + 1) * SLICE), i);
    p.catch(() => undefined); // awaited in its turn
    return p;
  };
  let next = start(0);
  for (let i = 0; i * SLICE < bytes; i++) {
    const slice = await next;
    if ((i + 1) * SLICE < bytes) next = start(i + 1);
    yield slice;
  }
}

/** Where a format 2 file's RAM image goes as it is read: an ImageStream
 * (it checks the page maps, and places the pages into a Memory). */
export interface ImageSink {
  write(bytes: Uint8Array): void;
  end(): void;
}

/** A snapshot file whose header has been read and checked; its payload
 * not yet. */
export interface SnapshotFile {
  info: SnapshotInfo;
  /** Format 2: its RAM image's layout, checked against the memory layout. */
  ram?: RamLayout;
  /**
   * Reads the payload and checks it whole against the header's sha256;
   * resolves with QEMU's state. A RAM image's data goes to `image` as it
   * is read (by default only its page maps are checked): before the check
   * ends, so what it writes to must be nobody's until this resolves.
   */
  read(image?: ImageSink): Promise<Uint8Array>;
}

/** A snapshot file's header, read and checked (a few KiB of the file). */
export async function snapshotFile(file: Blob | Uint8Array): Promise<SnapshotFile> {
  const source = sourceOf(file);
  const probe = new TextDecoder().decode(await source.read(0, Math.min(source.size, MAX_HEADER_BYTES)));
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
  if (source.size - start !== header.payload.bytes) {
    throw bad(`it is truncated or padded: the payload has ${source.size - start} bytes, the header says ${header.payload.bytes}`);
  }
  const { payload: _, image, ...info } = header;
  const ram = image && { open: image.open, env: image.env, regions: image.regions };
  if (ram) {
    const problem = ramLayoutProblem(ram) ?? (layoutBytes(ram) !== image.bytes ? `the RAM image has ${image.bytes} bytes, its regions need ${layoutBytes(ram)}` : undefined);
    if (problem) throw bad(`its RAM image does not fit the memory layout: ${problem}`);
  }
  const payload = (): Promise<Uint8Array> => source.read(start, source.size);
  return {
    info,
    ...(ram ? { ram } : {}),
    read: async (sink) => {
      // Format 1 (checkHeader: a file has a RAM image exactly when it is of format 2).
      if (!ram) {
        const bytes = await payload();
        if ((await sha256(bytes)) !== header.payload.sha256) throw corrupted();
        return inflate(bytes, header.stateBytes);
      }
      const plain = header.stateBytes + layoutBytes(ram);
      const content = new Content(header.stateBytes, sink ?? new ImageStream(ram));
      if (header.payload.encoding === 'gzip') {
        const bytes = await payload();
        const hashes = new PieceHashes(bytes.length);
        await hashes.slice([bytes], 0);
        if ((await hashes.done()) !== header.payload.sha256) throw corrupted();
        content.write(await inflate(bytes, plain));
      } else {
        if (header.payload.bytes !== plain) throw bad(`its payload has ${header.payload.bytes} bytes, the header says ${plain}`);
        if ((await readSlices(source, start, content)) !== header.payload.sha256) throw corrupted();
      }
      return content.end();
    },
  };
}

function corrupted(): PlaygroundError {
  return bad('its payload does not match its sha256 (the file is corrupted)');
}

/** A format 2 payload's plain bytes as they come: QEMU's state (a buffer
 * of its own, handed to QEMU's worker), then the RAM image's data. A
 * problem in the data is kept, not thrown, until the end: a corrupted
 * file is reported as one, even where its bytes also break a page map. */
class Content {
  private readonly state: Uint8Array;
  private at = 0;
  private problem: string | null = null;

  constructor(
    stateBytes: number,
    private readonly image: ImageSink,
  ) {
    this.state = new Uint8Array(stateBytes);
  }

  write(bytes: Uint8Array): void {
    const inState = Math.max(0, Math.min(bytes.length, this.state.length - this.at));
    if (inState > 0) this.state.set(bytes.subarray(0, inState), this.at);
    this.at += bytes.length;
    if (inState === bytes.length || this.problem !== null) return;
    try {
      this.image.write(bytes.subarray(inState));
    } catch (e) {
      this.problem = e instanceof Error ? e.message : String(e);
    }
  }

  /** QEMU's state, once all was written and fit. */
  end(): Uint8Array {
    if (this.problem === null) {
      try {
        this.image.end();
      } catch (e) {
        this.problem = e instanceof Error ? e.message : String(e);
      }
    }
    if (this.problem !== null) throw bad(`its RAM image does not fit the memory layout: ${this.problem}`);
    return this.state;
  }
}

/** A raw payload read a slice at a time into `content`, each slice hashed
 * while it is written; resolves with its sha256 of pieces. */
async function readSlices(source: Source, start: number, content: Content): Promise<string> {
  const hashes = new PieceHashes(source.size - start);
  let from = 0;
  for await (const slice of source.slices(start)) {
    const hashed = hashes.slice([slice], from);
    content.write(slice);
    await hashed;
    from += slice.length;
  }
  return hashes.done();
}

/** A snapshot file read and checked whole, its RAM image (format 2) in a
 * buffer: for tools and tests, which read small files or want the bytes. */
export async function readSnapshot(file: Blob | Uint8Array): Promise<{ info: SnapshotInfo } & SnapshotContent> {
  const f = await snapshotFile(file);
  if (!f.ram) return { info: f.info, state: await f.read() };
  const check = new ImageStream(f.ram);
  const data: Uint8Array[] = [];
  const state = await f.read({
    write: (bytes) => {
      check.write(bytes);
      data.push(bytes.slice());
    },
    end: () => check.end(),
  });
  return { info: f.info, state, image: { ...f.ram, data: concatBytes(data) } };
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
