// Runs in an instance worker: what could make its thread run the module's
// code again after QEMU's threads have ended, and how to stop all of it.
//
// Why: the next QEMU instance starts on the same Memory. This thread's
// runtime stays alive until the host terminates the worker (SETTLE_MS
// later, parked.ts), and until then two things could wake it into the old
// module's code, which would then read and write what is by now the new
// instance's memory: a mailbox wait (the glue's Atomics.waitAsync on its
// thread struct, at the same address in the next instance of the same
// build, whose mailbox notifications wake every waiter there;
// PThread.terminateRuntime() wakes it once and leaves pthread_self() 0,
// so the glue does not wait again, and any wait still pending is woken
// here) and the glue's timers (an asynchronous poll()'s timeout writes its
// result back).
// Once quiet, nothing of this instance touches the Memory, and the next
// one may start while this worker is still being torn down.

/** Atomics.waitAsync (ES2024, newer than this project's lib), as the
 * glue calls it: on an Int32Array. */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
type WaitAsync = (array: Int32Array, index: number, value: number, timeout?: number) => WaitAsyncResult;
const atomics = Atomics as typeof Atomics & { waitAsync: WaitAsync };

export interface AsyncWork {
  /** Ends the waits and timers made so far and refuses new ones; settles
   * once the waits' own callbacks have run (each wakes once, on memory
   * that is still this instance's). */
  quiesce(): Promise<void>;
}

/** What of the global scope this wraps (the worker's own, or a fake). */
export interface TimerScope {
  setTimeout: typeof setTimeout;
  clearTimeout: typeof clearTimeout;
}

/**
 * Wraps Atomics.waitAsync and the scope's timers, from now on, to keep
 * track of what is pending. Call before the glue is loaded.
 */
export function trackAsyncWork(scope: TimerScope = globalThis): AsyncWork {
  /** Pending waits: where each waits, to wake it. */
  const waits = new Map<Promise<unknown>, { array: Int32Array; index: number }>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const realWaitAsync: WaitAsync = atomics.waitAsync.bind(Atomics);
  const realSetTimeout = scope.setTimeout.bind(scope);
  const realClearTimeout = scope.clearTimeout.bind(scope);
  let quiet = false;

  atomics.waitAsync = (typedArray, index, value, timeout) => {
    // A wait that never ends: the glue then waits on nothing.
    if (quiet) return { async: true, value: new Promise<never>(() => undefined) };
    const result = realWaitAsync(typedArray, index, value, timeout);
    if (result.async) {
      const pending = result.value;
      waits.set(pending, { array: typedArray, index });
      void pending.then(() => waits.delete(pending));
    }
    return result;
  };

  scope.setTimeout = ((handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (quiet) return 0 as unknown as ReturnType<typeof setTimeout>;
    const id: ReturnType<typeof setTimeout> = realSetTimeout(() => {
      timers.delete(id);
      handler(...args);
    }, ms);
    timers.add(id);
    return id;
  }) as typeof setTimeout;
  scope.clearTimeout = ((id?: ReturnType<typeof setTimeout>) => {
    if (id !== undefined) timers.delete(id);
    realClearTimeout(id);
  }) as typeof clearTimeout;

  return {
    quiesce: async () => {
      quiet = true;
      for (const id of timers) realClearTimeout(id);
      timers.clear();
      const pending = [...waits];
      for (const [, at] of pending) Atomics.notify(at.array, at.index);
      // The glue's callbacks were attached before these, so they have run
      // when this resolves.
      await Promise.all(pending.map(([p]) => p));
    },
  };
}
