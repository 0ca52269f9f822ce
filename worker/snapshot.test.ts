// Runs in Node (vitest): the snapshot file, and every way it is refused.
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { createSharedMemory, RegionTable } from './qemu/memory';
import { captureRam, ImageStream, type RamImage } from './qemu/ram-image';
import { GZIP_UP_TO, HASH_PIECE, readSnapshot, snapshotFile, writeSnapshot } from './snapshot';

const INFO = { guest: 'arm' as const, build: 'qemu-system-arm@v1', ramMiB: 128, argv: ['-M', 'virt', '-m', '128'] };
const STATE = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
STATE.set([0x51, 0x45, 0x56, 0x4d]);

async function bytesOf(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.arrayBuffer());
}

async function file(): Promise<Uint8Array> {
  return bytesOf(await writeSnapshot(INFO, { state: STATE }, new Date('2026-11-28T00:00:00Z')));
}

function withHeader(f: Uint8Array, edit: (h: Record<string, unknown>) => void): Uint8Array {
  const text = new TextDecoder('latin1').decode(f);
  const a = text.indexOf('\n');
  const b = text.indexOf('\n', a + 1);
  const h = JSON.parse(text.slice(a + 1, b)) as Record<string, unknown>;
  edit(h);
  const head = new TextEncoder().encode(`${text.slice(0, a + 1)}${JSON.stringify(h)}\n`);
  const out = new Uint8Array(head.length + f.length - (b + 1));
  out.set(head);
  out.set(f.subarray(b + 1), head.length);
  return out;
}

describe('snapshot files', () => {
  it('round-trip: header and QEMU stream come back as saved, compressed in between', async () => {
    const f = await file();
    expect(new TextDecoder().decode(f.subarray(0, 26))).toBe('CPR-PLAYGROUND-SNAPSHOT 1\n');
    expect(f.length).toBeLessThan(STATE.length);
    const { info, state } = await readSnapshot(f);
    expect(info).toEqual({ ...INFO, createdAt: '2026-11-28T00:00:00.000Z', stateBytes: STATE.length });
    expect(state).toEqual(STATE);
  });

  it('a state of many pieces: the header describes its payload as plain gzip and sha256 read it', async () => {
    // Past the 4 MiB pieces the (de)compressor is fed in, and not all compressible.
    const big = new Uint8Array(9 * 2 ** 20 + 123);
    for (let i = 0, x = 1; i < big.length; i++) big[i] = i % 3 ? (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24 : 0;
    const f = await bytesOf(await writeSnapshot(INFO, { state: big }));
    const text = new TextDecoder('latin1').decode(f.subarray(0, 4096));
    const a = text.indexOf('\n');
    const b = text.indexOf('\n', a + 1);
    const header = JSON.parse(text.slice(a + 1, b)) as { stateBytes: number; payload: { bytes: number; sha256: string } };
    const payload = f.subarray(b + 1);
    expect(Object.keys(header)).toEqual(['guest', 'build', 'ramMiB', 'argv', 'createdAt', 'stateBytes', 'payload']);
    expect(header.payload.bytes).toBe(payload.length);
    expect(header.payload.sha256).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(header.stateBytes).toBe(big.length);
    // Compared as Buffers: a deep equality of 9 MiB takes minutes.
    expect(gunzipSync(payload).equals(big)).toBe(true);
    expect(Buffer.from((await readSnapshot(f)).state).equals(big)).toBe(true);
  });

  it('refuses a truncated file', async () => {
    const f = await file();
    await expect(readSnapshot(f.subarray(0, f.length - 10))).rejects.toMatchObject({ code: 'bad-snapshot', message: /truncated or padded/ });
    await expect(readSnapshot(f.subarray(0, 30))).rejects.toMatchObject({ code: 'bad-snapshot', message: /header line is cut off/ });
  });

  it('refuses a flipped byte in the payload before decompressing it', async () => {
    const f = await file();
    f[f.length - 100]! ^= 0x01;
    await expect(readSnapshot(f)).rejects.toMatchObject({ code: 'bad-snapshot', message: /does not match its sha256/ });
  });

  it('refuses a file that is not a snapshot, and a format it does not read', async () => {
    await expect(readSnapshot(new TextEncoder().encode('QEVM\x00\x00\x00\x03 some other file'))).rejects.toMatchObject({ code: 'bad-snapshot', message: /magic line/ });
    const f = await file();
    f[24] = "3".charCodeAt(0);
    await expect(readSnapshot(f)).rejects.toMatchObject({ message: /format 3, this page reads formats 1 and 2/ });
  });

  it('refuses headers that lie or name what this page has not', async () => {
    const f = await file();
    await expect(readSnapshot(withHeader(f, (h) => (h.guest = 'riscv')))).rejects.toMatchObject({ message: /guest "riscv"/ });
    await expect(readSnapshot(withHeader(f, (h) => (h.argv = ['-incoming', 'x'])))).rejects.toMatchObject({ message: /without -incoming/ });
    await expect(readSnapshot(withHeader(f, (h) => (h.stateBytes = 5)))).rejects.toMatchObject({ message: /the header says 5/ });
    await expect(readSnapshot(withHeader(f, (h) => (h.build = 'rm -rf /')))).rejects.toMatchObject({ message: /not a build name/ });
  });
});

describe('snapshot files of format 2 (a RAM image)', () => {
  const image = (): RamImage => {
    const memory = createSharedMemory();
    const table = new RegionTable(memory);
    const i = table.add('ram0');
    table.reserve(i, 4 * 2 ** 20);
    table.setSize(i, 4 * 2 ** 20);
    new Uint8Array(memory.buffer).fill(0x33, table.entry(i).base + 8192, table.entry(i).base + 8192 + 2 ** 21);
    return captureRam(memory, [{ fd: 15, file: i, path: '/dev/memfd/0-ram0' }], ['QEMU_CPR_EXEC_STATE=26']);
  };

  it('round-trip, gzip\'d when small and raw when big', async () => {
    const img = image();
    for (const gzipUpTo of [GZIP_UP_TO, 0]) {
      const f = await bytesOf(await writeSnapshot(INFO, { state: STATE, image: img }, new Date('2026-11-28T00:00:00Z'), gzipUpTo));
      expect(new TextDecoder().decode(f.subarray(0, 26))).toBe('CPR-PLAYGROUND-SNAPSHOT 2\n');
      expect(new TextDecoder().decode(f.subarray(0, 2000))).toContain(gzipUpTo ? '"encoding":"gzip"' : '"encoding":"raw"');
      const back = await readSnapshot(f);
      expect(back.info).toEqual({ ...INFO, createdAt: '2026-11-28T00:00:00.000Z', stateBytes: STATE.length });
      expect(back.state).toEqual(STATE);
      expect(back.state.byteOffset === 0 && back.state.buffer.byteLength === STATE.length).toBe(true);
      expect(back.image!.regions).toEqual(img.regions);
      expect(back.image!.env).toEqual({ QEMU_CPR_EXEC_STATE: '26' });
      expect(Buffer.from(back.image!.data).equals(Buffer.from(img.data))).toBe(true);
    }
  });

  it('hashes the payload in pieces: sha256 of the pieces\' sha256, pieces across the device state and the RAM image', async () => {
    const img = image();
    const f = await bytesOf(await writeSnapshot(INFO, { state: STATE, image: img }, new Date(), 0));
    const text = new TextDecoder('latin1').decode(f.subarray(0, 8192));
    const b = text.indexOf('\n', text.indexOf('\n') + 1);
    const header = JSON.parse(text.slice(text.indexOf('\n') + 1, b)) as { payload: { sha256: string; piece: number; bytes: number } };
    const payload = f.subarray(b + 1);
    expect(Buffer.from(payload).equals(Buffer.concat([STATE, img.data]))).toBe(true);
    expect(header.payload.piece).toBe(HASH_PIECE);
    const digests: Buffer[] = [];
    for (let at = 0; at < payload.length; at += HASH_PIECE) digests.push(createHash('sha256').update(payload.subarray(at, at + HASH_PIECE)).digest());
    expect(digests.length).toBeGreaterThan(2);
    expect(header.payload.sha256).toBe(createHash('sha256').update(Buffer.concat(digests)).digest('hex'));
    f[f.length - 1]! ^= 1;
    await expect(readSnapshot(f)).rejects.toMatchObject({ message: /does not match its sha256/ });
  });

  it('refuses a RAM image that does not fit the layout, and a truncated raw payload', async () => {
    const f = await bytesOf(await writeSnapshot(INFO, { state: STATE, image: image() }, new Date(), 0));
    await expect(readSnapshot(withHeader(f, (h) => ((h.image as { regions: { base: number }[] }).regions[0]!.base = 4096)))).rejects.toMatchObject({
      code: 'bad-snapshot',
      message: /RAM image does not fit the memory layout: .*not aligned/,
    });
    await expect(readSnapshot(withHeader(f, (h) => delete (h as { image?: unknown }).image))).rejects.toMatchObject({ message: /does not describe its RAM image/ });
    await expect(readSnapshot(f.subarray(0, f.length - 4096))).rejects.toMatchObject({ message: /truncated or padded/ });
  });

  /** RAM with 20 MiB of pages that are not zeros: a raw payload of several slices. */
  const bigGuest = (): { memory: WebAssembly.Memory; image: RamImage; base: number; size: number } => {
    const memory = createSharedMemory();
    const table = new RegionTable(memory);
    const i = table.add('ram0');
    const size = 32 * 2 ** 20;
    table.reserve(i, size);
    table.setSize(i, size);
    const base = table.entry(i).base;
    const bytes = new Uint8Array(memory.buffer, base, size);
    for (let at = 4096; at < 20 * 2 ** 20; at += 4096) if ((at >> 12) % 7) bytes.fill((at >> 12) & 0xff || 1, at, at + 4096);
    return { memory, base, size, image: captureRam(memory, [{ fd: 15, file: i, path: '/dev/memfd/0-ram0' }], ['QEMU_CPR_EXEC_STATE=26']) };
  };

  it('reads a big file from a Blob a slice at a time, its pages straight into a fresh Memory', async () => {
    const { memory, image: img, base, size } = bigGuest();
    const f = await snapshotFile(await writeSnapshot(INFO, { state: STATE, image: img }, new Date(), 0));
    expect(f.info.stateBytes).toBe(STATE.length);
    const fresh = createSharedMemory();
    expect(await f.read(new ImageStream(f.ram!, fresh))).toEqual(STATE);
    expect(new RegionTable(fresh).entries()).toEqual(new RegionTable(memory).entries());
    expect(Buffer.from(new Uint8Array(fresh.buffer, base, size)).equals(Buffer.from(new Uint8Array(memory.buffer, base, size)))).toBe(true);
  });

  it('reads it a slice at a time where Blob streams are not byte streams', async () => {
    const { memory, image: img, base, size } = bigGuest();
    const blob = await writeSnapshot(INFO, { state: STATE, image: img }, new Date(), 0);
    const stream = vi.spyOn(Blob.prototype, 'stream').mockImplementation(() => new ReadableStream<Uint8Array<ArrayBuffer>>());
    try {
      const f = await snapshotFile(blob);
      const fresh = createSharedMemory();
      expect(await f.read(new ImageStream(f.ram!, fresh))).toEqual(STATE);
      expect(stream).toHaveBeenCalled();
      expect(Buffer.from(new Uint8Array(fresh.buffer, base, size)).equals(Buffer.from(new Uint8Array(memory.buffer, base, size)))).toBe(true);
    } finally {
      stream.mockRestore();
    }
  });

  it('calls a flipped byte in a page map what it is: a corrupted file', async () => {
    const { image: img } = bigGuest();
    const f = await bytesOf(await writeSnapshot(INFO, { state: STATE, image: img }, new Date(), 0));
    // The page map comes right after the device state.
    f[f.length - img.data.length]! ^= 0x80;
    await expect(readSnapshot(new Blob([f as Uint8Array<ArrayBuffer>]))).rejects.toMatchObject({ code: 'bad-snapshot', message: /does not match its sha256/ });
  });
});

