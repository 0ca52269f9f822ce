// Emscripten JS library linked into QEMU (--js-library): exec() for
// cpr-exec. A thin trampoline into the host (worker/qemu/instance.ts).
//
// migration/cpr-exec.c (patch series) calls Module.qemuWasmExec(argv,
// envp) on the module's main thread where it would execvp(), and fails
// with ENOSYS when there is no such hook (a build linked without this
// library). The host (Module.onExec) decides at once whether it can start
// the build argv[0] names: 0 = accepted (the host then ends this instance
// and instantiates the new one on the same Memory), or -errno (ENOENT: no
// such build), and QEMU takes its exec-failure path and restarts the VM.
addToLibrary({
  $qemuWasmExec__deps: ['$UTF8ToString'],
  $qemuWasmExec: (argv, envp) => {
    var strings = (p) => {
      var out = [];
      for (var s; (s = {{{ makeGetValue('p', 0, '*') }}}); p += {{{ POINTER_SIZE }}}) {
        out.push(UTF8ToString(s));
      }
      return out;
    };
    var hook = Module['onExec'];
    if (!hook) {
      return -{{{ cDefs.ENOSYS }}};
    }
    try {
      return hook(strings(argv), strings(envp)) | 0;
    } catch (e) {
      err(`exec: ${e}`);
      return -{{{ cDefs.EIO }}};
    }
  },
  $qemuWasmExec__postset: 'Module["qemuWasmExec"] = qemuWasmExec;',

  // The top of this instance's heap (sbrk), so that the host clears only
  // what this instance dirtied before the next one starts on the Memory.
  $cprHeapTop__deps: ['emscripten_get_sbrk_ptr'],
  // On wasm64 (-sMEMORY64) the export returns a BigInt, and the sbrk
  // pointer is 8 bytes; makeGetValue reads it as a Number either way.
  $cprHeapTop: () => {
    var p = Number(_emscripten_get_sbrk_ptr());
    return {{{ makeGetValue('p', 0, '*') }}};
  },
  $cprHeapTop__postset: 'Module["cprHeapTop"] = cprHeapTop;',
});
// Nothing in the wasm imports these: include them whenever the library is linked.
extraLibraryFuncs.push('$qemuWasmExec', '$cprHeapTop');
