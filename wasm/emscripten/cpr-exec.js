// Emscripten JS library linked into QEMU (--js-library): exec() for
// cpr-exec. Runs on the module's main thread (proxied from QEMU's).
//
// migration/cpr-exec.c calls qemu_wasm_exec(argv, envp) where it would
// execvp() (patch 0008). The host (Module.onExec) decides at once whether
// it can start the build argv[0] names: it returns 0 and then ends this
// instance and instantiates the new one on the same Memory, or -errno
// (ENOENT: no such build), and QEMU takes its exec-failure path and
// restarts the VM.
addToLibrary({
  qemu_wasm_exec__proxy: 'sync',
  qemu_wasm_exec__sig: 'ipp',
  qemu_wasm_exec: (argv, envp) => {
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

  // Called by the host on the old instance once exec was accepted and its
  // pthreads are terminated. Its runtime is still loaded on this thread and
  // still waits (Atomics.waitAsync) on the main thread's mailbox, whose
  // address is the same in the next instance of the same build: unless it
  // is retired it wakes up for the new instance's proxied calls and runs
  // them against its own, old, file system (seen: EBADF on a new pipe).
  // callUserCallback() ignores everything once ABORT is set.
  $cprRetire: () => {
    ABORT = true;
  },
  $cprRetire__postset: 'Module["cprRetire"] = cprRetire;',
  qemu_wasm_exec__deps: ['$cprRetire'],
});

