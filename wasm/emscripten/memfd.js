// Emscripten JS library linked into QEMU (--js-library): memfds whose
// contents live in a reserved region at the top of the shared
// WebAssembly.Memory, so that they survive a re-instantiation of the
// module on the same Memory (cpr-exec in the browser).
//
// Runs on the module's main thread (the worker that created the module):
// qemu_wasm_memfd_create is proxied there like every file-system syscall, and the
// file system's read, write, ftruncate and mmap run there too. Only
// qemu_wasm_heap_limit runs on QEMU's own threads (it is a constant).
//
// Layout of the 2 GiB Memory (every build must agree on it):
//   [0, HEAP_LIMIT)          the module's stack, static data and heap;
//                            sbrk() stops at HEAP_LIMIT (-Wl,--wrap=sbrk,
//                            see util/oslib-posix.c)
//   [HEAP_LIMIT, end)        memfd regions, allocated downwards from the end
//
// The region table lives in JS on the worker (globalThis.__cprMemfd), which
// outlives the module instances: the next instance finds the files there and
// re-creates them under the same fd numbers before QEMU starts.
// PROTOTYPE (wip/live-update): no magic/version header in memory yet, no
// freeing on close.
addToLibrary({
  $CPR_MEMFD_HEAP_LIMIT: 0x40000000,
  $CPR_MEMFD_ALIGN: 0x200000,

  qemu_wasm_heap_limit__deps: ['$CPR_MEMFD_HEAP_LIMIT'],
  qemu_wasm_heap_limit__sig: 'p',
  qemu_wasm_heap_limit: () => CPR_MEMFD_HEAP_LIMIT,

  // The registry shared by every instance created on this worker.
  $cprMemfdState__deps: ['$CPR_MEMFD_HEAP_LIMIT'],
  $cprMemfdState: () => {
    globalThis.__cprMemfd ??= {
      top: HEAP8.length,  // regions are below this
      free: [],           // [{base, cap}] of regions given up by growth
      files: [],          // [{path, fd, base, cap, size}]
      log: [],
    };
    return globalThis.__cprMemfd;
  },

  $cprMemfdAlloc__deps: ['$cprMemfdState', '$CPR_MEMFD_HEAP_LIMIT', '$CPR_MEMFD_ALIGN'],
  $cprMemfdAlloc: (size) => {
    var st = cprMemfdState();
    var cap = Math.max(CPR_MEMFD_ALIGN,
                       Math.ceil(size / CPR_MEMFD_ALIGN) * CPR_MEMFD_ALIGN);
    var i = st.free.findIndex((r) => r.cap >= cap);
    if (i >= 0) {
      return st.free.splice(i, 1)[0];
    }
    var base = st.top - cap;
    if (base < CPR_MEMFD_HEAP_LIMIT) {
      throw new FS.ErrnoError({{{ cDefs.ENOMEM }}});
    }
    st.top = base;
    HEAPU8.fill(0, base, base + cap);
    return { base, cap };
  },

  // Give file f room for size bytes, moving its contents if needed (only
  // while it is not mapped: a mapping is a pointer into the region).
  $cprMemfdReserve__deps: ['$cprMemfdAlloc', '$cprMemfdState'],
  $cprMemfdReserve: (f, size) => {
    if (size <= f.cap) {
      return;
    }
    if (f.mapped) {
      throw new FS.ErrnoError({{{ cDefs.EBUSY }}});
    }
    var r = cprMemfdAlloc(Math.max(size, f.cap * 2));
    if (f.cap) {
      HEAPU8.copyWithin(r.base, f.base, f.base + f.size);
      cprMemfdState().free.push({ base: f.base, cap: f.cap });
    }
    f.base = r.base;
    f.cap = r.cap;
  },

  $cprMemfdAttach__deps: ['$FS', '$MEMFS', '$cprMemfdReserve', '$cprMemfdState'],
  $cprMemfdAttach: (node, f) => {
    var fileOps = MEMFS.ops_table.file;
    node.cprFile = f;
    node.node_ops = Object.assign({}, fileOps.node, {
      getattr(node) {
        var attr = fileOps.node.getattr(node);
        attr.size = node.cprFile.size;
        return attr;
      },
      setattr(node, attr) {
        var f = node.cprFile;
        if (attr.size !== undefined) {
          cprMemfdReserve(f, attr.size);
          if (attr.size < f.size) {
            HEAPU8.fill(0, f.base + attr.size, f.base + f.size);
          }
          f.size = attr.size;
          attr = Object.assign({}, attr);
          delete attr.size;
        }
        fileOps.node.setattr(node, attr);
      },
    });
    node.stream_ops = Object.assign({}, fileOps.stream, {
      read(stream, buffer, offset, length, position) {
        var f = stream.node.cprFile;
        var n = Math.max(0, Math.min(length, f.size - position));
        buffer.set(HEAPU8.subarray(f.base + position, f.base + position + n), offset);
        return n;
      },
      write(stream, buffer, offset, length, position) {
        var f = stream.node.cprFile;
        cprMemfdReserve(f, position + length);
        HEAPU8.set(buffer.subarray(offset, offset + length), f.base + position);
        f.size = Math.max(f.size, position + length);
        return length;
      },
      llseek(stream, offset, whence) {
        var position = offset;
        if (whence === {{{ cDefs.SEEK_CUR }}}) {
          position += stream.position;
        } else if (whence === {{{ cDefs.SEEK_END }}}) {
          position += stream.node.cprFile.size;
        }
        if (position < 0) {
          throw new FS.ErrnoError({{{ cDefs.EINVAL }}});
        }
        return position;
      },
      mmap(stream, length, position, prot, flags) {
        var f = stream.node.cprFile;
        if ((flags & {{{ cDefs.MAP_PRIVATE }}}) || position + length > f.cap) {
          // Private mappings would need a copy; nothing here asks for one.
          throw new FS.ErrnoError({{{ cDefs.EINVAL }}});
        }
        f.mapped = (f.mapped || 0) + 1;
        cprMemfdState().log.push(`mmap ${stream.path} fd ${stream.fd} -> 0x${(f.base + position).toString(16)} len 0x${length.toString(16)}`);
        return { ptr: f.base + position, allocated: false };
      },
      msync() {
        return 0;  // the mapping is the file
      },
    });
  },

  // memfd_create() of util/memfd.c on Emscripten: returns -errno on error.
  qemu_wasm_memfd_create__deps: ['$FS', '$cprMemfdAttach', '$cprMemfdState', '$cprMemfdAdopt'],
  qemu_wasm_memfd_create__proxy: 'sync',
  qemu_wasm_memfd_create__sig: 'ipi',
  qemu_wasm_memfd_create: (name, flags) => {
    var st = cprMemfdState();
    try {
      FS.mkdirTree('/dev/memfd');
      // Names may contain "/" (QOM paths): not part of the file name.
      var path = `/dev/memfd/${st.files.length}-${UTF8ToString(name).replaceAll("/", "_")}`;
      var node = FS.create(path, 0o600);
      var f = { path, fd: -1, base: 0, cap: 0, size: 0 };
      cprMemfdAttach(node, f);
      var stream = FS.open(path, {{{ cDefs.O_RDWR }}});
      f.fd = stream.fd;
      st.files.push(f);
      st.log.push(`memfd_create ${path} -> fd ${f.fd}`);
      return f.fd;
    } catch (e) {
      if (!(e instanceof FS.ErrnoError)) throw e;
      return -e.errno;
    }
  },

  // Called by the host when the instance is about to end (exec): records
  // which fds are open on memfds (QEMU dup()s the CPR state fd, and closes
  // others), so that the next instance opens the same numbers.
  $cprMemfdSnapshot__deps: ['$FS', '$cprMemfdState'],
  $cprMemfdSnapshot: () => {
    var st = cprMemfdState();
    st.open = [];
    for (var stream of FS.streams) {
      if (stream?.node?.cprFile) {
        st.open.push({ fd: stream.fd, file: st.files.indexOf(stream.node.cprFile) });
      }
    }
    st.log.push(`snapshot ${JSON.stringify(st.open)}`);
    return st.open;
  },

  // Called by the host (Module.preRun) in a new instance on the same
  // Memory: re-create every memfd of the previous instance under its path
  // and fd number, before QEMU's main() opens anything.
  $cprMemfdAdopt: () => {
    var st = cprMemfdState();
    FS.mkdirTree('/dev/memfd');
    for (var f of st.files) {
      f.mapped = 0;
      cprMemfdAttach(FS.create(f.path, 0o600), f);
    }
    // Without a snapshot, each memfd under the fd it was created with.
    var open = st.open ?? st.files.map((f, i) => ({ fd: f.fd, file: i }));
    for (var o of open) {
      var f = st.files[o.file];
      var stream = FS.open(f.path, {{{ cDefs.O_RDWR }}});
      if (stream.fd !== o.fd) {
        FS.dupStream(stream, o.fd);
        FS.close(stream);
      }
      st.log.push(`adopt ${f.path} fd ${o.fd} at 0x${f.base.toString(16)} size 0x${f.size.toString(16)}`);
    }
    st.open = undefined;
  },
  $cprMemfdAdopt__deps: ['$FS', '$cprMemfdAttach', '$cprMemfdState', '$cprMemfdSnapshot'],
  $cprMemfdAdopt__postset: 'Module["cprMemfdAdopt"] = cprMemfdAdopt; Module["cprMemfdState"] = cprMemfdState; Module["cprMemfdSnapshot"] = cprMemfdSnapshot;',
});
