// Emscripten JS library linked into QEMU (--js-library): how exit() from
// QEMU's main thread ends the module.
//
// With PROXY_TO_PTHREAD, exit() on a pthread is proxied to the module's
// main thread, which then runs libc's exit() there: QEMU's atexit handlers
// run on a thread that never ran QEMU, while QEMU's own thread has unwound
// with its locks still held. One of them waits for such a lock and the
// main thread spins forever: the exit status is never reported and the
// worker hangs (seen with `-version` and with every start-up error).
// Instead end the way _Exit() does: report the status (Module.quit) and
// skip the handlers. QEMU has already printed its message by then (stderr
// is unbuffered); the host then terminates the pthreads.
addToLibrary({
  $exitOnMainThread__deps: ['proc_exit'],
  $exitOnMainThread__proxy: 'async',
  $exitOnMainThread: (returnCode) => {
    {{{ runtimeKeepalivePop() }}};
    _proc_exit(returnCode);
  },
});
