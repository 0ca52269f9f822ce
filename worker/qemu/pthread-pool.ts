// The pthread workers a QEMU instance starts with. Any thread; the module
// object only on the thread that hosts the module.
import type { QemuModule } from './emscripten';

/** The pool the glue starts (its PTHREAD_POOL_SIZE: 4 in our builds). */
export const BUILD_POOL_WORKERS = 4;

/** The build's pthread pool (its PTHREAD_POOL_SIZE) holds the threads QEMU
 * starts at boot; `migrate` starts one more, the migration thread. Without
 * a worker ready for it, that thread waits for a new worker to start and
 * instantiate the module: 30-40 ms between the VM's stop and the state
 * save, inside every live update's pause (QMP's timestamps, measured in
 * Chromium). One more worker, loaded with the pool, takes it at once. */
export const EXTRA_POOL_WORKERS = 1;

/** Workers an instance starts with in all; its instance worker prewarms
 * as many (instance-client.ts). */
export const POOL_WORKERS = BUILD_POOL_WORKERS + EXTRA_POOL_WORKERS;

/** Adds `n` workers to the glue's pool. Before preRun the glue loads
 * them with its own, once the instance is up; `load` them here when the
 * glue's loading has begun (in preRun). Never load one earlier: loading
 * instantiates the module, whose memory init a live update may run only
 * once the old instance's memory is cleared. */
export function addPoolWorkers(module: QemuModule, n: number, load: boolean): void {
  const pool = module.PThread;
  if (!pool) return;
  for (let i = 0; i < n; i++) {
    const worker = pool.allocateUnusedWorker();
    if (load) void pool.loadWasmModuleToWorker(worker);
  }
}
