// memfds over regions of the shared Memory: the file system side of
// QEMU's memfd_create() on Emscripten. Runs on the main thread of one QEMU
// instance (its instance worker, or Node's main thread), where the
// module's FS lives; QEMU's threads reach it through the JS library
// wasm/emscripten/memfd.js (Module.cprMemfdCreate) and FS syscalls.
//
// A memfd is a MEMFS file under /dev/memfd whose node and stream ops are
// replaced: its bytes live in a region of the reserved top of the Memory
// (memory.ts), recorded in the header's region table, so the next
// instance on the same Memory finds them. ftruncate reserves the region,
// read/write copy, and mmap returns the region itself (allocated: false,
// so munmap frees nothing); msync is a no-op because the mapping is the
// file. The same ops back files created in /dev/shm (memory-backend-file
// with mem-path=/dev/shm/..., share=on), and any other file the moment
// QEMU maps it shared (memory-backend-file with mem-path=/tmp/..., say):
// MEMFS would map such a file as a private copy on the heap, which the
// next instance's start clears, and the guest's RAM would be lost.
import type { EmscriptenFS, EmscriptenNode, EmscriptenStream } from './emscripten';
import { RegionTable } from './memory';

// errno values are Emscripten's own (not Linux's: its ENOMEM is 48, not 12);
// open and mmap flags are Linux's, which Emscripten's musl keeps.
const ENOMEM = 48;
const EINVAL = 28;
const EBUSY = 10;
const O_RDWR = 2;
const O_CREAT = 0o100;
const MAP_SHARED = 1;
const MAP_PRIVATE = 2;
const SEEK_CUR = 1;
const SEEK_END = 2;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

export const MEMFD_DIR = '/dev/memfd';
export const SHM_DIR = '/dev/shm';

/** An fd open on a memfd when QEMU exec'd: the next instance reopens it. */
export interface OpenMemfd {
  fd: number;
  /** Index in the region table. */
  file: number;
  /** Where the file lives in the FS (a memfd path or /dev/shm/...). */
  path: string;
}

interface MemfdNode extends EmscriptenNode {
  cprFile?: number;
  /** Carried over from the previous instance: its size is the guest's. */
  cprAdopted?: boolean;
  /** Live mappings, as `offset:length` (see unmapped()). */
  cprMaps?: Map<string, number>;
  cprOpen?: number;
  mode: number;
  node_ops: Record<string, unknown>;
  stream_ops: Record<string, unknown>;
  /** MEMFS's own bytes of a plain file (null once it became a memfd). */
  contents?: Uint8Array | number[] | null;
  usedBytes?: number;
}

type Stream = EmscriptenStream & {
  node: MemfdNode;
  fd: number;
  position: number;
  path: string;
  stream_ops: Record<string, unknown>;
};

type MmapOp = (s: Stream, length: number, position: number, prot: number, flags: number) => { ptr: number; allocated: boolean };

/** The number of mappings of a node (0 when it has none). */
export function mappingCount(node: { cprMaps?: Map<string, number> }): number {
  let n = 0;
  for (const c of node.cprMaps?.values() ?? []) n += c;
  return n;
}

export class MemfdFs {
  readonly table: RegionTable;
  private readonly bytes: Uint8Array;
  readonly log: string[] = [];

  constructor(
    memory: WebAssembly.Memory,
    private readonly fs: EmscriptenFS,
  ) {
    this.table = new RegionTable(memory);
    this.bytes = new Uint8Array(memory.buffer);
  }

  /** memfd_create(): a new file in /dev/memfd, open read-write. */
  create(name: string): number {
    const fs = this.fs;
    fs.mkdirTree(MEMFD_DIR);
    let index: number;
    try {
      index = this.table.add(name);
    } catch {
      throw new fs.ErrnoError(ENOMEM);
    }
    // Names may contain "/" (QOM paths) and need not be unique.
    const path = `${MEMFD_DIR}/${index}-${name.replaceAll('/', '_')}`;
    this.attach(fs.create(path, 0o600) as MemfdNode, index);
    const stream = fs.open(path, O_RDWR) as Stream;
    // The path is only a handle: memfds have no name in the file system.
    this.log.push(`memfd_create ${name} -> fd ${stream.fd} (file ${index})`);
    return stream.fd;
  }

  /** Files created in /dev/shm are memfds too (memory-backend-file). */
  installShm(): void {
    const fs = this.fs;
    fs.mkdirTree(SHM_DIR);
    const dir = fs.lookupPath(SHM_DIR).node as MemfdNode;
    const ops = dir.node_ops as { mknod(parent: EmscriptenNode, name: string, mode: number, dev: number): MemfdNode };
    const mknod = ops.mknod.bind(ops);
    dir.node_ops = {
      ...dir.node_ops,
      mknod: (parent: EmscriptenNode, name: string, mode: number, dev: number): MemfdNode => {
        const node = mknod(parent, name, mode, dev);
        if ((mode & S_IFMT) === S_IFREG) {
          let index: number;
          try {
            index = this.table.add(`shm:${name}`);
          } catch {
            throw new fs.ErrnoError(ENOMEM);
          }
          this.attach(node, index);
          this.log.push(`shm ${name} (file ${index})`);
        }
        return node;
      },
    };
  }

  /**
   * A plain file that QEMU maps shared becomes a memfd at that moment:
   * its bytes move into a region and every open fd of it switches to the
   * memfd ops, so the mapping is the file and outlives the instance.
   * MEMFS shares one stream-ops object among all its plain files; its
   * mmap is wrapped once per instance.
   */
  installSharedFileMaps(): void {
    const fs = this.fs;
    fs.mkdirTree(MEMFD_DIR);
    const probePath = `${MEMFD_DIR}/.probe`;
    const probe = fs.create(probePath, 0o600) as MemfdNode;
    fs.unlink(probePath);
    const ops = probe.stream_ops as { mmap?: MmapOp };
    const mmap = ops.mmap;
    if (!mmap) return;
    ops.mmap = (s, length, position, prot, flags) => {
      if (!(flags & MAP_SHARED) || s.node.cprFile !== undefined || (s.node.mode & S_IFMT) !== S_IFREG) {
        return mmap(s, length, position, prot, flags);
      }
      this.adoptPlainFile(s.node, s.path);
      return (s.stream_ops as { mmap: MmapOp }).mmap(s, length, position, prot, flags);
    };
  }

  private adoptPlainFile(node: MemfdNode, path: string): void {
    const fs = this.fs;
    const size = node.usedBytes ?? 0;
    let index: number;
    try {
      index = this.table.add(`file:${path.split('/').pop() ?? path}`);
    } catch {
      throw new fs.ErrnoError(ENOMEM);
    }
    if (!this.table.reserve(index, size)) {
      this.table.release(index);
      throw new fs.ErrnoError(ENOMEM);
    }
    const base = this.table.entry(index).base;
    const contents = node.contents;
    if (contents && size > 0) {
      this.bytes.set(contents instanceof Uint8Array ? contents.subarray(0, size) : contents.slice(0, size), base);
    }
    this.table.setSize(index, size);
    node.contents = null;
    node.usedBytes = 0;
    this.attach(node, index);
    const streams = (fs.streams as (Stream | null | undefined)[]).filter((st): st is Stream => !!st && st.node === node);
    for (const st of streams) st.stream_ops = node.stream_ops;
    node.cprOpen = streams.length;
    this.log.push(`file ${path} kept as a memfd (file ${index}, ${size} bytes)`);
  }

  /** The fds open on memfds now, for the next instance (at exec). */
  snapshot(): OpenMemfd[] {
    const open: OpenMemfd[] = [];
    for (const s of this.fs.streams as (Stream | null)[]) {
      if (s && s.node.cprFile !== undefined) open.push({ fd: s.fd, file: s.node.cprFile, path: s.path });
    }
    return open;
  }

  /**
   * In a new instance, before QEMU's main(): reopen every memfd of the
   * previous instance under the same fd number and path. Files no fd
   * refers to any more are freed: only the old instance mapped them.
   * `early`: the previous instance still runs (a QEMU started before the
   * exec, the cpr-early series): nothing is freed yet, takeOver() does
   * that when the exec comes.
   */
  adopt(open: readonly OpenMemfd[], early = false): void {
    this.fs.mkdirTree(MEMFD_DIR);
    if (!early) this.releaseAllBut(open);
    const paths = new Map<number, string>();
    for (const o of open) {
      const stream = this.reopen(o, paths);
      if (stream.fd !== o.fd) {
        this.fs.dupStream(stream, o.fd);
        this.fs.close(stream);
      }
    }
  }

  /**
   * In an instance started early, when the exec it replaces comes: the
   * fds open at that exec. Those adopted at the start stay; one the old
   * QEMU closed since is closed; the others (the CPR state's memfd, made
   * at the migration) are opened now, under the same number when it is
   * free here, else under another. Files no fd refers to any more are
   * freed. Returns the fd here of each fd at the exec.
   */
  takeOver(open: readonly OpenMemfd[]): Map<number, number> {
    const fs = this.fs;
    const wanted = new Map(open.map((o) => [o.fd, o.file] as const));
    const kept = new Set(open.map((o) => o.file));
    for (const s of fs.streams as (Stream | null | undefined)[]) {
      if (!s?.node.cprAdopted || wanted.get(s.fd) === s.node.cprFile) continue;
      // A file the exec no longer hands on may have been freed by the
      // old QEMU meanwhile, and its table entry reused: let go of it
      // without touching the table (releaseAllBut() below frees what
      // is still marked in use).
      if (!kept.has(s.node.cprFile!)) s.node.cprFile = undefined;
      fs.close(s);
    }
    this.releaseAllBut(open);
    const fds = new Map<number, number>();
    const paths = new Map<number, string>();
    for (const s of fs.streams as (Stream | null | undefined)[]) if (s?.node.cprFile !== undefined) paths.set(s.node.cprFile, s.path);
    for (const o of open) {
      const here = fs.streams[o.fd] as Stream | null | undefined;
      if (here?.node.cprFile === o.file) {
        fds.set(o.fd, o.fd);
        continue;
      }
      const stream = this.reopen(o, paths);
      if (!here && stream.fd !== o.fd) {
        fs.dupStream(stream, o.fd);
        fs.close(stream);
        fds.set(o.fd, o.fd);
      } else {
        fds.set(o.fd, stream.fd);
      }
    }
    return fds;
  }

  /** Frees the files in use that none of `open` refers to. */
  private releaseAllBut(open: readonly OpenMemfd[]): void {
    const kept = new Set(open.map((o) => o.file));
    for (const e of this.table.entries()) if (e.inUse && !kept.has(e.index)) this.table.release(e.index);
  }

  /** A new stream on the file of `o`: its node made at o.path the first
   * time (recorded in `paths`), opened again after that. */
  private reopen(o: OpenMemfd, paths: Map<number, string>): Stream {
    const fs = this.fs;
    let path = paths.get(o.file);
    if (path === undefined) {
      path = o.path;
      fs.mkdirTree(path.slice(0, path.lastIndexOf('/')));
      const node = fs.create(path, 0o600) as MemfdNode;
      this.attach(node, o.file);
      node.cprAdopted = true;
      paths.set(o.file, path);
      const e = this.table.entry(o.file);
      this.log.push(`adopt fd ${o.fd} ${path} at 0x${e.base.toString(16)} size 0x${e.size.toString(16)}`);
    }
    return fs.open(path, O_RDWR) as Stream;
  }

  private attach(node: MemfdNode, index: number): void {
    const fs = this.fs;
    const table = this.table;
    const bytes = this.bytes;
    node.cprFile = index;
    node.cprMaps = new Map();
    node.cprOpen = 0;
    const baseNode = node.node_ops as { getattr(n: MemfdNode): { size: number }; setattr(n: MemfdNode, a: { size?: number }): void };
    const baseStream = node.stream_ops;
    const reserve = (n: MemfdNode, size: number): void => {
      const e = table.entry(n.cprFile!);
      if (size <= e.cap) return;
      // A mapping is a pointer into the region: it cannot move. Nor can
      // guest RAM carried over from the previous QEMU: a new QEMU that
      // wants it bigger has a different configuration and must fail
      // rather than move (and so lose) the guest's memory.
      if (mappingCount(n) > 0 || n.cprAdopted) throw new fs.ErrnoError(EBUSY);
      if (!table.reserve(n.cprFile!, size)) throw new fs.ErrnoError(ENOMEM);
    };
    const released = (n: MemfdNode): void => {
      // memfd semantics: the file lives while an fd or a mapping does.
      if (n.cprOpen === 0 && mappingCount(n) === 0 && n.cprFile !== undefined && table.entry(n.cprFile).inUse) {
        table.release(n.cprFile);
      }
    };
    const unmapped = (n: MemfdNode, offset: number, length: number): void => {
      const key = `${offset}:${length}`;
      const count = n.cprMaps?.get(key) ?? 0;
      if (count === 0) return;
      if (count === 1) n.cprMaps!.delete(key);
      else n.cprMaps!.set(key, count - 1);
      released(n);
    };
    node.node_ops = {
      ...node.node_ops,
      getattr(n: MemfdNode) {
        const attr = baseNode.getattr(n);
        attr.size = table.entry(n.cprFile!).size;
        return attr;
      },
      setattr(n: MemfdNode, attr: { size?: number }) {
        if (attr.size !== undefined) {
          const e = table.entry(n.cprFile!);
          reserve(n, attr.size);
          const now = table.entry(n.cprFile!);
          if (attr.size < e.size) bytes.fill(0, now.base + attr.size, now.base + e.size);
          table.setSize(n.cprFile!, attr.size);
          attr = { ...attr };
          delete attr.size;
        }
        baseNode.setattr(n, attr);
      },
    };
    node.stream_ops = {
      ...baseStream,
      open(s: Stream) {
        s.node.cprOpen = (s.node.cprOpen ?? 0) + 1;
      },
      dup(s: Stream) {
        s.node.cprOpen = (s.node.cprOpen ?? 0) + 1;
      },
      close(s: Stream) {
        s.node.cprOpen = Math.max(0, (s.node.cprOpen ?? 1) - 1);
        released(s.node);
      },
      read(s: Stream, buffer: Uint8Array, offset: number, length: number, position: number) {
        const e = table.entry(s.node.cprFile!);
        const n = Math.max(0, Math.min(length, e.size - position));
        buffer.set(bytes.subarray(e.base + position, e.base + position + n), offset);
        return n;
      },
      write(s: Stream, buffer: Uint8Array, offset: number, length: number, position: number) {
        reserve(s.node, position + length);
        const e = table.entry(s.node.cprFile!);
        bytes.set(buffer.subarray(offset, offset + length), e.base + position);
        if (position + length > e.size) table.setSize(s.node.cprFile!, position + length);
        return length;
      },
      llseek(s: Stream, offset: number, whence: number) {
        let position = offset;
        if (whence === SEEK_CUR) position += s.position;
        else if (whence === SEEK_END) position += table.entry(s.node.cprFile!).size;
        if (position < 0) throw new fs.ErrnoError(EINVAL);
        return position;
      },
      mmap(s: Stream, length: number, position: number, _prot: number, flags: number) {
        const e = table.entry(s.node.cprFile!);
        // A private mapping would need a copy; QEMU maps guest RAM shared.
        if (flags & MAP_PRIVATE || position + length > e.cap) throw new fs.ErrnoError(EINVAL);
        const key = `${position}:${length}`;
        s.node.cprMaps!.set(key, (s.node.cprMaps!.get(key) ?? 0) + 1);
        return { ptr: e.base + position, allocated: false };
      },
      // The mapping is the file: nothing to write back. Emscripten tells
      // a file system of munmap() only through this call (for a writable
      // shared mapping, with the whole mapping), so a call that covers a
      // whole mapping ends it; QEMU msyncs guest RAM only for pmem.
      msync(s: Stream, _buffer: Uint8Array, offset: number, length: number) {
        unmapped(s.node, offset, length);
        return 0;
      },
    };
  }
}

export { O_CREAT };
