// Runs in Node (vitest): memfds over the shared Memory (memfd.ts), driven
// through a small stand-in for Emscripten's FS that has the shape MEMFS
// gives nodes and streams (ops objects shared by every plain file, a
// stream's ops copied from its node at open). The real FS runs under the
// smoke and e2e tests.
import { describe, expect, it } from 'vitest';
import type { EmscriptenFS, EmscriptenNode, EmscriptenStream } from './emscripten';
import { mappingCount, MemfdFs } from './memfd';
import { createSharedMemory, RegionTable } from './memory';

const MAP_SHARED = 1;
const MAP_PRIVATE = 2;
const PROT_RW = 3;
const S_IFREG = 0o100000;

type Ops = Record<string, (...a: never[]) => unknown>;
interface Node extends EmscriptenNode {
  name: string;
  mode: number;
  node_ops: Ops;
  stream_ops: Ops;
  contents: Uint8Array | null;
  usedBytes: number;
  cprFile?: number;
  cprMaps?: Map<string, number>;
}
interface Stream extends EmscriptenStream {
  node: Node;
  path: string;
  fd: number;
  position: number;
  stream_ops: Ops;
}

class ErrnoError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** MEMFS-like: every plain file shares one stream-ops object. */
function fakeFs(): EmscriptenFS & { nodes: Map<string, Node>; mmapCalls: string[]; truncate(fd: number, size: number): void; mmap(fd: number, len: number, pos: number, flags: number): { ptr: number; allocated: boolean }; msync(fd: number, pos: number, len: number): void } {
  const nodes = new Map<string, Node>();
  const streams: (Stream | null)[] = [null, null, null];
  const mmapCalls: string[] = [];
  const fileStreamOps: Ops = {
    mmap: ((s: Stream, length: number, position: number) => {
      mmapCalls.push(`memfs ${s.path} ${position}:${length}`);
      return { ptr: 0x1000, allocated: true };
    }) as never,
  };
  const fileNodeOps: Ops = {
    getattr: ((n: Node) => ({ size: n.usedBytes })) as never,
    setattr: ((n: Node, a: { size?: number }) => {
      if (a.size !== undefined) {
        const c = new Uint8Array(a.size);
        if (n.contents) c.set(n.contents.subarray(0, Math.min(a.size, n.usedBytes)));
        n.contents = c;
        n.usedBytes = a.size;
      }
    }) as never,
  };
  const dirNodeOps: Ops = {
    mknod: ((_p: Node, name: string, mode: number) => newNode(name, mode)) as never,
  };
  const newNode = (name: string, mode: number): Node => ({
    name,
    mode,
    node_ops: (mode & S_IFREG) === S_IFREG ? fileNodeOps : dirNodeOps,
    stream_ops: (mode & S_IFREG) === S_IFREG ? fileStreamOps : {},
    contents: null,
    usedBytes: 0,
    notifyListeners: () => undefined,
  });
  const stream = (fd: number): Stream => {
    const s = streams[fd];
    if (!s) throw new ErrnoError(8);
    return s;
  };
  const fs = {
    nodes,
    mmapCalls,
    streams,
    ErrnoError,
    mkdirTree(path: string) {
      if (!nodes.has(path)) nodes.set(path, newNode(path, 0o40000));
    },
    create(path: string) {
      const dir = nodes.get(path.slice(0, path.lastIndexOf('/')));
      const node = (dir?.node_ops.mknod as unknown as (p: Node | undefined, n: string, m: number, d: number) => Node)(dir, path, S_IFREG | 0o600, 0);
      nodes.set(path, node);
      return node;
    },
    unlink(path: string) {
      nodes.delete(path);
    },
    lookupPath(path: string) {
      const node = nodes.get(path);
      if (!node) throw new ErrnoError(44);
      return { node };
    },
    open(path: string) {
      const node = nodes.get(path);
      if (!node) throw new ErrnoError(44);
      const s: Stream = { node, path, fd: streams.length, position: 0, flags: 2, stream_ops: node.stream_ops };
      streams.push(s);
      (s.stream_ops.open as ((s: Stream) => void) | undefined)?.(s);
      return s;
    },
    close(s: Stream) {
      streams[s.fd] = null;
      (s.stream_ops.close as ((s: Stream) => void) | undefined)?.(s);
    },
    dupStream(s: Stream, fd = streams.length) {
      const d = { ...s, fd };
      streams[fd] = d;
      (d.stream_ops.dup as ((s: Stream) => void) | undefined)?.(d);
      return d;
    },
    writeFile(path: string, data: Uint8Array) {
      const node = nodes.get(path) ?? fs.create(path);
      node.contents = data.slice();
      node.usedBytes = data.length;
    },
    truncate(fd: number, size: number) {
      const s = stream(fd);
      (s.node.node_ops.setattr as unknown as (n: Node, a: { size: number }) => void)(s.node, { size });
    },
    mmap(fd: number, len: number, pos: number, flags: number) {
      const s = stream(fd);
      return (s.stream_ops.mmap as unknown as (s: Stream, l: number, p: number, prot: number, f: number) => { ptr: number; allocated: boolean })(s, len, pos, PROT_RW, flags);
    },
    msync(fd: number, pos: number, len: number) {
      const s = stream(fd);
      (s.stream_ops.msync as unknown as (s: Stream, b: Uint8Array, o: number, l: number, f: number) => number)(s, new Uint8Array(0), pos, len, MAP_SHARED);
    },
  };
  return fs as unknown as ReturnType<typeof fakeFs>;
}

describe('MemfdFs', () => {
  it('counts mappings down again: a memfd closed after its last munmap frees its region', () => {
    const memory = createSharedMemory();
    const fs = fakeFs();
    const memfds = new MemfdFs(memory, fs);
    const fd = memfds.create('ram0');
    fs.truncate(fd, 4 << 20);
    const a = fs.mmap(fd, 4 << 20, 0, MAP_SHARED);
    const b = fs.mmap(fd, 4 << 20, 0, MAP_SHARED);
    expect(a).toEqual(b);
    expect(a.allocated).toBe(false);
    const node = fs.streams[fd]!.node as Node;
    expect(mappingCount(node)).toBe(2);
    // Emscripten's munmap of a writable shared mapping: msync of all of it.
    fs.msync(fd, 0, 4 << 20);
    expect(mappingCount(node)).toBe(1);
    fs.msync(fd, 0, 4 << 20);
    expect(mappingCount(node)).toBe(0);
    // A partial msync is not an munmap.
    fs.mmap(fd, 4 << 20, 0, MAP_SHARED);
    fs.msync(fd, 0, 4096);
    expect(mappingCount(node)).toBe(1);
    fs.msync(fd, 0, 4 << 20);
    const table = new RegionTable(memory);
    const index = node.cprFile!;
    expect(table.entry(index).inUse).toBe(true);
    fs.close(fs.streams[fd]!);
    expect(table.entry(index).inUse).toBe(false);
  });

  it('adopts early without freeing anything, then takes the exec over', () => {
    const memory = createSharedMemory();
    const oldFs = fakeFs();
    const old = new MemfdFs(memory, oldFs);
    const ram = old.create('ram0');
    oldFs.truncate(ram, 2 << 20);
    const rom = old.create('rom');
    oldFs.truncate(rom, 2 << 20);
    const spare = old.create('spare'); // open in the old QEMU, not handed on
    // The next instance starts while the old one runs: nothing is freed.
    const fs = fakeFs();
    const next = new MemfdFs(memory, fs);
    next.adopt(old.snapshot().filter((o) => o.fd !== spare), true);
    const table = new RegionTable(memory);
    const spareFile = (oldFs.streams[spare]!.node as Node).cprFile as number;
    expect(table.entry(spareFile).inUse).toBe(true);
    // The migration makes the CPR state, under a number taken here already.
    const state = old.create('QEMU_CPR_EXEC_STATE');
    oldFs.truncate(state, 4096);
    fs.mkdirTree('/tmp');
    fs.writeFile('/tmp/busy', new Uint8Array(1));
    while (fs.streams.length <= state) fs.open('/tmp/busy', 2);
    const stateFile = (oldFs.streams[state]!.node as Node).cprFile as number;
    // The exec: the rom closed since, the CPR state new.
    const fds = next.takeOver(old.snapshot().filter((o) => o.fd !== rom && o.fd !== spare));
    expect(fds.get(ram)).toBe(ram);
    const stateHere = fds.get(state)!;
    expect(stateHere).not.toBe(state);
    expect((fs.streams[stateHere]!.node as Node).cprFile).toBe(stateFile);
    expect(fs.streams[rom]).toBeNull();
    expect(table.entry((oldFs.streams[rom]!.node as Node).cprFile as number).inUse).toBe(false);
    expect(table.entry(spareFile).inUse).toBe(false);
    expect(table.entry(stateFile).inUse).toBe(true);
  });

  it('keeps a memfd that is still mapped after its fd is closed, and refuses to grow it', () => {
    const memory = createSharedMemory();
    const fs = fakeFs();
    const memfds = new MemfdFs(memory, fs);
    const fd = memfds.create('rom');
    fs.truncate(fd, 1 << 20);
    fs.mmap(fd, 1 << 20, 0, MAP_SHARED);
    const node = fs.streams[fd]!.node as Node;
    expect(() => fs.truncate(fd, 64 << 20)).toThrow(/errno 10/); // EBUSY: a mapping cannot move
    fs.close(fs.streams[fd]!);
    expect(new RegionTable(memory).entry(node.cprFile!).inUse).toBe(true);
  });

  it('turns a plain file that QEMU maps shared into a memfd, its bytes and open fds with it', () => {
    const memory = createSharedMemory();
    const fs = fakeFs();
    const memfds = new MemfdFs(memory, fs);
    memfds.installSharedFileMaps();
    fs.mkdirTree('/tmp');
    fs.writeFile('/tmp/ramf', new Uint8Array([1, 2, 3, 4]));
    const s = fs.open('/tmp/ramf', 2) as Stream;
    const other = fs.open('/tmp/ramf', 2) as Stream;
    fs.truncate(s.fd, 2 << 20);
    const m = fs.mmap(s.fd, 2 << 20, 0, MAP_SHARED);
    expect(m.allocated).toBe(false);
    expect(fs.mmapCalls).toEqual([]); // MEMFS's copy-on-heap mmap never ran
    const entry = new RegionTable(memory).entry(s.node.cprFile!);
    expect(entry).toMatchObject({ inUse: true, size: 2 << 20, name: 'file:ramf' });
    expect(m.ptr).toBe(entry.base);
    expect([...new Uint8Array(memory.buffer, entry.base, 5)]).toEqual([1, 2, 3, 4, 0]);
    // Both open fds now read the region, and exec hands both over.
    expect(other.stream_ops).toBe(s.node.stream_ops);
    expect(memfds.snapshot().map((o) => o.fd).sort()).toEqual([s.fd, other.fd].sort());
    fs.close(other);
    expect(new RegionTable(memory).entry(s.node.cprFile!).inUse).toBe(true);
  });

  it('leaves private mappings of plain files to MEMFS', () => {
    const memory = createSharedMemory();
    const fs = fakeFs();
    const memfds = new MemfdFs(memory, fs);
    memfds.installSharedFileMaps();
    fs.mkdirTree('/tmp');
    fs.writeFile('/tmp/rom', new Uint8Array(16));
    const s = fs.open('/tmp/rom', 2) as Stream;
    expect(fs.mmap(s.fd, 16, 0, MAP_PRIVATE).allocated).toBe(true);
    expect(s.node.cprFile).toBeUndefined();
    expect(fs.mmapCalls).toEqual(['memfs /tmp/rom 0:16']);
  });
});
