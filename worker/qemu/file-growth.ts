// Runs wherever QEMU's module runs (an instance worker, or Node); no DOM.
//
// How QEMU's file system grows a file it writes. Emscripten's MEMFS keeps
// a file in one array and, past 1 MiB, grows it by an eighth at a time,
// copying it whole each time: a migration file (a snapshot's save, the
// copy route) as big as guest RAM is copied about nine times over, every
// new array zeroed first, while the VM is stopped. Growing by half at a
// time copies it about three times over; the array is then at most half
// again the file, until it is read out and removed.
import type { EmscriptenFS } from './emscripten';

/** From this capacity on MEMFS grows by an eighth (its CAPACITY_DOUBLING_MAX). */
const MEMFS_DOUBLING_MAX = 1024 * 1024;
const GROWTH = 1.5;

/** A plain MEMFS file, as its write sees it. */
export interface GrowingNode {
  contents?: Uint8Array | number[] | null;
  usedBytes?: number;
}

type WriteOp = (
  stream: { node: GrowingNode },
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
  canOwn?: boolean,
) => number;

/** The capacity a write up to `end` needs, grown by half; or null when
 * MEMFS's own growth is left to it (small files, or room enough). */
export function grownCapacity(node: GrowingNode, end: number): number | null {
  const contents = node.contents;
  if (!(contents instanceof Uint8Array) || !node.usedBytes) return null;
  if (end <= contents.length || contents.length < MEMFS_DOUBLING_MAX) return null;
  return Math.max(end, Math.floor(contents.length * GROWTH));
}

/** Makes MEMFS grow big plain files by half (all plain files share one
 * table of stream operations: a probe file reaches it). */
export function installFileGrowth(fs: EmscriptenFS): void {
  const probePath = '/.growth-probe';
  const probe = fs.create(probePath, 0o600) as unknown as { stream_ops: { write?: WriteOp } };
  fs.unlink(probePath);
  const ops = probe.stream_ops;
  const write = ops.write;
  if (!write) return;
  ops.write = (stream, buffer, offset, length, position, canOwn) => {
    const node = stream.node;
    const capacity = canOwn ? null : grownCapacity(node, position + length);
    if (capacity !== null) {
      // MEMFS's own growth then finds room enough and copies nothing.
      const grown = new Uint8Array(capacity);
      grown.set((node.contents as Uint8Array).subarray(0, node.usedBytes));
      node.contents = grown;
    }
    return write(stream, buffer, offset, length, position, canOwn);
  };
}
