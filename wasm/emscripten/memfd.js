// Emscripten JS library linked into QEMU (--js-library): the host side of
// memfds over the shared WebAssembly.Memory, for cpr-exec in the browser.
// A thin trampoline: the memfd file system itself is TypeScript in the
// worker (worker/qemu/memfd.ts), reached through Module.cprMemfdCreate,
// so that it can change without relinking QEMU.
//
// QEMU (util/memfd.c, util/oslib-posix.c in the patch series) calls the
// hooks it finds on Module, and does without them when there are none:
// a build linked without this library has no memfds (ENOSYS) and no heap
// cap. The postsets below put them there, on every thread.
//
// Module.qemuWasmMemfdCreate is called on the module's main thread (QEMU
// proxies the call there), where Emscripten's FS lives (every FS syscall
// is proxied there in this build).
// Module.qemuWasmHeapLimit is called on any of QEMU's threads: it only
// reads the layout header that the host writes at the top of the Memory
// (worker/qemu/memory.ts, "cpr-memory-layout/2"):
//   [end - 64 KiB]  u32 magic 0x4d525043 ("CPRM"), u32 version 2,
//                   u32 heap limit, u32, u32, u32 slot split, ...
// With a slot split, the part below the heap limit holds two instances
// of 32-bit targets: a build linked below the split (its static data, so
// its heap too) keeps its heap below it, one linked at the split
// (-sGLOBAL_BASE, the second build) above it. Then the host can start the
// next build while the last one still runs (docs/live-update.md).
// Without a header (a Memory the host did not prepare) the heap is not
// capped and memfds are refused: QEMU then behaves as upstream on wasm.
addToLibrary({
  $CPR_LAYOUT_TAG: '"cpr-memory-layout/2"',
  $CPR_LAYOUT_TAG__postset: 'Module["cprLayout"] = CPR_LAYOUT_TAG;',
  // Where this build's static data starts: the host reads it before the
  // instantiation, to know which half of a split heap part it takes.
  $CPR_STATIC_BASE: '{{{ GLOBAL_BASE }}}',
  $CPR_STATIC_BASE__postset: 'Module["cprStaticBase"] = CPR_STATIC_BASE;',

  $qemuWasmHeapLimit__deps: ['$CPR_STATIC_BASE'],
  $qemuWasmHeapLimit: () => {
    var h = (HEAPU8.length - 0x10000) >> 2;
    if (HEAPU32[h] !== 0x4d525043 || HEAPU32[h + 1] !== 2) {
      return 0;
    }
#if MEMORY64
    // The 64-bit targets' builds are all linked low, and their heap needs
    // more than the lower half: they do not split (wasm/steps/qemu.sh).
    return HEAPU32[h + 2];
#else
    var split = HEAPU32[h + 5];
    return split && CPR_STATIC_BASE < split ? split : HEAPU32[h + 2];
#endif
  },
  $qemuWasmHeapLimit__postset: 'Module["qemuWasmHeapLimit"] = qemuWasmHeapLimit;',

  // memfd_create() of util/memfd.c on Emscripten: an fd or -errno (a JS
  // function called for another thread cannot set that thread's errno).
  $qemuWasmMemfdCreate__deps: ['$UTF8ToString'],
  $qemuWasmMemfdCreate: (name, flags) => {
    var create = Module['cprMemfdCreate'];
    if (!create) {
      return -{{{ cDefs.ENOSYS }}};
    }
    try {
      return create(UTF8ToString(name), flags) | 0;
    } catch (e) {
      if (typeof e?.errno === 'number') {
        return -e.errno;
      }
      err(`memfd_create: ${e}`);
      return -{{{ cDefs.EIO }}};
    }
  },
  $qemuWasmMemfdCreate__postset: 'Module["qemuWasmMemfdCreate"] = qemuWasmMemfdCreate;',
});
// Nothing in the wasm imports these: include them whenever the library is linked.
extraLibraryFuncs.push('$CPR_LAYOUT_TAG', '$CPR_STATIC_BASE', '$qemuWasmHeapLimit', '$qemuWasmMemfdCreate');
