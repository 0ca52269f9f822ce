// Emscripten JS library linked into QEMU (--js-library): how exit() from
// QEMU's main thread ends the module.
//
// With PROXY_TO_PTHREAD, exit() on a pthread is proxied to the module's
// main thread, which then runs libc's exit() there: QEMU's atexit handlers
// run on a thread that never ran QEMU, while QEMU's own thread has unwound
// with its locks still held. One of them waits for such a lock and the
// main thread spins forever: the exit status is never reported and the
// worker hangs (seen with `-version` and with every start-up error).
// Instead end the way _Exit() does: skip the handlers and hand the status
// to the host (Module.onExit), which terminates QEMU's pthreads. QEMU has
// printed its message by then (stderr is unbuffered).
addToLibrary({
  $exitOnMainThread__deps: ['$runtimeKeepalivePop'],
  $exitOnMainThread__proxy: 'async',
  $exitOnMainThread: (returnCode) => {
    {{{ runtimeKeepalivePop() }}};
    EXITSTATUS = returnCode;
    Module['onExit']?.(returnCode);
  },
});
