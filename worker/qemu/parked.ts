// Futex words that a terminated QEMU instance's threads were waiting on,
// and waking whatever still waits there. Runs in the instance worker
// (collect) and in the host worker (wake); plain reads of the shared Memory.
//
// Why: every QEMU thread blocks in Emscripten's emscripten_futex_wait()
// (memory.atomic.wait32). When an instance is ended at cpr-exec, threads
// parked in such a wait are terminated, but their entries can stay in the
// engine's waiter list for a while. The next instance is the same build or
// a near-identical one on the same Memory: its threads wait on the same
// words (a mutex in static data, a condition variable's node at the same
// stack address). musl wakes one waiter per unlock or signal
// (memory.atomic.notify with count 1), and the engine wakes the oldest
// waiter first: the dead one. The live thread then sleeps forever; seen as
// a new QEMU that prints its banner and never runs the VM, or a running
// QEMU whose main loop stops (monitor and serial input dead). Waking every
// waiter on those words once the old workers are gone empties the list;
// spurious wake-ups are harmless (every futex user re-checks and waits
// again).

/** How long an instance worker lives on after terminating QEMU's pthread
 * workers. Terminating it sooner leaks them: a nested worker whose parent
 * ends before the child's own shutdown ran stays alive, one thread and
 * ~13 MiB per live update (measured in Chromium; 30 ms and 100 ms both
 * ended every one of them). On the pause's path: 30 ms, not more (the
 * renderer's thread count stayed flat over 40 updates at 30 ms, with the
 * 2-core machine under a compile load). */
export const SETTLE_MS = 30;

/** Word offsets in Emscripten 6's `struct pthread` (wasm32; musl
 * src/internal/pthread_impl.h with Emscripten's fields at the end):
 * `self` is the first word, `detach_state` the 8th, `wait_addr` (the
 * futex word the thread waits on in emscripten_futex_wait, low bit =
 * notify pending) the 30th. */
const SELF = 0;
const PREV = 2;
const NEXT = 3;
const DETACH_STATE = 7;
/** musl's DT_EXITED: a joinable thread that has exited, not yet joined. */
const DT_EXITED = 0;
const WAIT_ADDR = 29;
/** More threads than QEMU ever runs; bounds a walk of a corrupt list. */
const MAX_THREADS = 256;

/** The words to wake after an instance's threads were ended. */
export interface Parked {
  /** Where QEMU's threads wait: their futex words and their own structs
   * (a pthread worker's mailbox is an Atomics.waitAsync there). Nothing
   * should wait here once those workers are gone. */
  threads: number[];
  /** The runtime main thread's struct: the instance worker's own mailbox
   * wait, there until the instance worker itself is terminated. */
  runtime: number[];
}

function isThread(words: Uint32Array, p: number): boolean {
  return p > 0 && p % 4 === 0 && p + (WAIT_ADDR + 1) * 4 <= words.byteLength && words[p / 4 + SELF] === p;
}

/**
 * Whether a thread that the runtime still lists has in fact ended: a
 * joinable thread stays listed until joined (its worker, back in its event
 * loop, is ended by terminate() at once).
 */
export function threadExited(memory: WebAssembly.Memory, thread: number): boolean {
  const words = new Uint32Array(memory.buffer);
  return isThread(words, thread) && Atomics.load(words, thread / 4 + DETACH_STATE) === DT_EXITED;
}

/**
 * The futex words the given threads (and the rest of their thread list,
 * which includes the runtime's main thread) wait on now, plus each thread's
 * own struct (its mailbox's Atomics.waitAsync). Call after terminating
 * them: a terminated thread no longer changes its `wait_addr`.
 */
export function parkedAddresses(memory: WebAssembly.Memory, threads: readonly number[]): Parked {
  const words = new Uint32Array(memory.buffer);
  const seen = new Set<number>();
  const queue = threads.filter((t) => isThread(words, t));
  while (queue.length > 0 && seen.size < MAX_THREADS) {
    const t = queue.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const link of [words[t / 4 + PREV]!, words[t / 4 + NEXT]!]) if (isThread(words, link) && !seen.has(link)) queue.push(link);
  }
  const ours = new Set(threads);
  const parked = new Set<number>();
  const runtime = new Set<number>();
  for (const t of seen) {
    (ours.has(t) ? parked : runtime).add(t);
    const at = words[t / 4 + WAIT_ADDR]! & ~3;
    if (at > 0 && at < memory.buffer.byteLength) parked.add(at);
  }
  return { threads: [...parked], runtime: [...runtime].filter((t) => !parked.has(t)) };
}

/** What ending an instance's threads left behind. */
export interface StoppedThreads extends Parked {
  /** QEMU threads cancelled, and those still running when their workers
   * were terminated (ended by force later). */
  cancelled: number;
  left: number;
}

/** An instance that ended no threads. */
export const NO_THREADS: StoppedThreads = { threads: [], runtime: [], cancelled: 0, left: 0 };

/** Wakes every waiter on each address; returns how many were woken. */
export function wakeParked(memory: WebAssembly.Memory, addresses: readonly number[]): number {
  const i32 = new Int32Array(memory.buffer);
  let woken = 0;
  for (const at of addresses) woken += Atomics.notify(i32, at / 4);
  return woken;
}
