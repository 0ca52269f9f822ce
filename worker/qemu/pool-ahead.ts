// Runs on the thread that hosts the module, in a browser (the instance
// worker): loads QEMU's pthread pool while the instance itself
// instantiates, rather than after it.
//
// The glue loads its pool workers in preRun, once the instance is up, and
// waits for all of them before main(): each instantiates the module again,
// 5-20 ms of a live update's pause one after the other on two cores.
// Sending each worker the glue's own load message first lets those
// instantiations run beside the instance's (the module's memory init runs
// once, in whichever comes first; the others wait on its flag). When the
// glue sends its load message later, it is dropped here, and the worker's
// answer handed to the glue's handler if it came before the glue listened.
// A worker that fails to load before the glue takes it is the instance's
// failure to report, not the worker's.
//
// The two messages are the glue's (Emscripten 6, library_pthread.js); the
// glue is pinned by the build recipe, and a load message that is not the
// one expected goes through unchanged.

/** The glue's "load the module" message to a pool worker, and its answer. */
const LOAD = 1;
const LOADED = 3;

/** The module's callbacks that the glue proxies from its pthreads, when
 * the module object has them (its knownHandlers). */
const PROXIED_HANDLERS = ['onExit', 'onAbort', 'print', 'printErr'];

interface LoadMessage {
  cmd: typeof LOAD;
  handlers: string[];
  wasmMemory: WebAssembly.Memory;
  wasmModule: WebAssembly.Module;
}

/** What of a pool worker this needs (a Worker; a fake in unit tests). */
export type PoolWorker = Pick<Worker, 'postMessage' | 'onmessage' | 'addEventListener' | 'removeEventListener'>;

function isPoolWorker(value: unknown): value is PoolWorker {
  return typeof value === 'object' && value !== null && typeof (value as Partial<Worker>).postMessage === 'function' && typeof (value as Partial<Worker>).addEventListener === 'function';
}

function cmdOf(message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { cmd?: unknown }).cmd : undefined;
}

/** Sends each pool worker the load message the glue would send it, now. */
export function loadPoolAhead(workers: readonly unknown[], module: object, memory: WebAssembly.Memory, wasmModule: WebAssembly.Module): void {
  const handlers = PROXIED_HANDLERS.filter((h) => Object.prototype.propertyIsEnumerable.call(module, h));
  const message: LoadMessage = { cmd: LOAD, handlers, wasmMemory: memory, wasmModule };
  for (const worker of workers) if (isPoolWorker(worker)) loadAhead(worker, message);
}

function loadAhead(worker: PoolWorker, message: LoadMessage): void {
  let loaded = false;
  let taken = false;
  const onLoaded = (ev: Event): void => {
    if (cmdOf((ev as MessageEvent).data) !== LOADED) return;
    loaded = true;
    worker.removeEventListener('message', onLoaded);
  };
  worker.addEventListener('message', onLoaded);
  // A module that does not instantiate fails in the instance too, which
  // reports it; the glue, had it loaded this worker itself, never would
  // have (it loads its pool only once the instance is up). Kept from the
  // instance worker's global scope, where it would read as QEMU's crash.
  worker.addEventListener('error', (ev: Event) => {
    if (!taken) ev.preventDefault();
  });
  const send = worker.postMessage.bind(worker) as (message: unknown, transfer?: Transferable[]) => void;
  worker.postMessage = ((m: unknown, transfer?: Transferable[]) => {
    const same = cmdOf(m) === LOAD && (m as LoadMessage).wasmModule === message.wasmModule && (m as LoadMessage).wasmMemory === message.wasmMemory;
    if (!taken && same) {
      taken = true;
      // The glue set its handler just before this; an answer that came
      // earlier found none.
      if (loaded) setTimeout(() => worker.onmessage?.call(worker as Worker, new MessageEvent('message', { data: { cmd: LOADED } })));
      return;
    }
    send(m, transfer);
  }) as Worker['postMessage'];
  send(message);
}
