// Runs in a dedicated module Worker, created by the page (web/playground.ts).
//
// Entry point of the QEMU host: exposes QemuHost over Comlink. QEMU's own
// pthreads are nested Workers that the Emscripten glue spawns from here.
import { expose } from 'comlink';
import { registerTransferHandlers } from './api';
import { qemuBackend } from './backend';
import { QemuHost } from './host';

registerTransferHandlers();

const host = new QemuHost({
  backend: qemuBackend,
  isolated: () => self.crossOriginIsolated === true,
});

// The Emscripten glue rethrows a trap of one of QEMU's pthreads as an
// uncaught error here. It is QEMU's crash, not the worker's: let the host
// report it (qemu-exited, with the trap) and keep the worker alive.
self.addEventListener('error', (ev: ErrorEvent) => {
  const what = ev.error instanceof Error ? ev.error.message : ev.message;
  if (host.absorbUncaughtError(what || 'an uncaught error in a QEMU thread')) ev.preventDefault();
});

expose(host);
