// Runs in Node (vitest): how big files grow in QEMU's file system, against
// a stand-in for MEMFS's write (its growth by an eighth past 1 MiB).
import { describe, expect, it } from 'vitest';
import type { EmscriptenFS } from './emscripten';
import { grownCapacity, installFileGrowth, type GrowingNode } from './file-growth';

/** MEMFS's write of a plain file, as in the glue. */
function memfs(): { fs: EmscriptenFS; node: GrowingNode; write(bytes: Uint8Array): void } {
  const node = { contents: null as Uint8Array | null, usedBytes: 0 };
  const ops = {
    write(stream: { node: typeof node }, buffer: Uint8Array, offset: number, length: number, position: number, canOwn?: boolean): number {
      const n = stream.node;
      if (canOwn) {
        n.contents = buffer.subarray(offset, offset + length);
        n.usedBytes = length;
      } else if (n.usedBytes === 0 && position === 0) {
        n.contents = buffer.slice(offset, offset + length);
        n.usedBytes = length;
      } else {
        const prev = n.contents!.length;
        if (prev < position + length) {
          const cap = Math.max(position + length, (prev * (prev < 1024 * 1024 ? 2 : 1.125)) >>> 0);
          const grown = new Uint8Array(cap);
          grown.set(n.contents!.subarray(0, n.usedBytes));
          n.contents = grown;
        }
        n.contents!.set(buffer.subarray(offset, offset + length), position);
        n.usedBytes = Math.max(n.usedBytes, position + length);
      }
      return length;
    },
  };
  const fs = { create: () => ({ stream_ops: ops }), unlink: () => undefined } as unknown as EmscriptenFS;
  return { fs, node, write: (bytes) => void ops.write({ node }, bytes, 0, bytes.length, node.usedBytes) };
}

const TOTAL = 16 * 2 ** 20;

/** Writes 16 MiB in 32 KiB pieces (QEMU's migration writes in small
 * buffers); whether the file has the bytes written, and how much growing
 * it copied (the bytes in use each time its array was replaced). */
function writeBig(install: boolean): { copied: number; ok: boolean; capacity: number } {
  const m = memfs();
  if (install) installFileGrowth(m.fs);
  const piece = new Uint8Array(32 * 1024);
  let copied = 0;
  for (let at = 0; at < TOTAL; at += piece.length) {
    const before = m.node.contents;
    const used = m.node.usedBytes ?? 0;
    m.write(piece.fill((at / piece.length) & 0xff));
    if (before && m.node.contents !== before) copied += used;
  }
  const c = m.node.contents as Uint8Array;
  const ok = m.node.usedBytes === TOTAL && c[0] === 0 && c[TOTAL - 1] === ((TOTAL / piece.length - 1) & 0xff);
  return { copied, ok, capacity: c.length };
}

describe('file growth in QEMU\'s file system', () => {
  it('grows a big file by half: a third of the copying, the same bytes', () => {
    const own = writeBig(false);
    const ours = writeBig(true);
    expect(own.ok && ours.ok).toBe(true);
    // MEMFS alone copies a 16 MiB file ~8 times over while it grows.
    expect(own.copied).toBeGreaterThan(6 * TOTAL);
    expect(ours.copied).toBeLessThan(2.5 * TOTAL);
    expect(ours.capacity).toBeLessThanOrEqual(1.5 * TOTAL);
  });

  it('leaves small files, writes with room, and taken buffers to MEMFS', () => {
    expect(grownCapacity({ contents: new Uint8Array(1000), usedBytes: 1000 }, 2000)).toBeNull();
    expect(grownCapacity({ contents: new Uint8Array(4 << 20), usedBytes: 1 << 20 }, 2 << 20)).toBeNull();
    expect(grownCapacity({ contents: null, usedBytes: 0 }, 8 << 20)).toBeNull();
    expect(grownCapacity({ contents: new Uint8Array(4 << 20), usedBytes: 4 << 20 }, (4 << 20) + 10)).toBe(6 << 20);
    expect(grownCapacity({ contents: new Uint8Array(4 << 20), usedBytes: 4 << 20 }, 20 << 20)).toBe(20 << 20);
  });
});
