// Runs in the QEMU host worker: starts one QEMU instance in its own
// instance worker (instance.worker.ts) and speaks to it by messages.
// Ending the instance is terminating that worker: its runtime and every
// pthread worker of QEMU go with it.
import type { ConsoleName } from './consoles';
import type { ExecRequest, HandOver, QemuExit } from './instance';
import type { OpenMemfd } from './memfd';
import type { Capture } from './capture';
import { prewarmName, type FromInstance, type InstanceStage, type ReplyValue, type ToInstance } from './instance-protocol';
import { POOL_WORKERS } from './pthread-pool';
import type { StoppedThreads } from './parked';
import { NO_THREADS, parkedAddresses, SETTLE_MS, wakeParked } from './parked';

/** The launch message's fields, plus the host's callbacks. */
export interface InstanceLaunch extends Omit<Extract<ToInstance, { type: 'launch' }>, 'type'> {
  /** Buffers of `files` handed over rather than copied (detached here). */
  transfer?: ArrayBuffer[];
  onConsole(console: ConsoleName, bytes: Uint8Array): void;
  onLog(line: string): void;
  onExec?(request: ExecRequest): void;
  /** Console input the instance got after its exec (instance.ts). */
  onUnread?(console: ConsoleName, bytes: Uint8Array): void;
  onExecRefused?(argv: string[], reason: string): void;
  /** A snapshot's capture exec came (CAPTURE_EXEC). */
  onCapture?(capture: Capture): void;
  /** The runtime is up (wall clock ms); QEMU's main() runs next. */
  onRuntimeReady?(at: number): void;
  /** Started early: QEMU waits at its CPR state (wall clock ms). */
  onAwaitingExec?(at: number): void;
  /** [LAUNCH_REPLY_MS] */
  launchTimeoutMs?: number;
}

/** What endThreads() found. */
export interface EndedThreads {
  /** The heap top then (0: unknown). */
  heapTop: number;
  /** Every thread ended and the instance's own runtime is quiet
   * (quiesce.ts): the next instance may start on the Memory before kill()
   * has ended the rest. */
  inert: boolean;
}

export interface InstanceHandle {
  write(console: ConsoleName, bytes: Uint8Array): void;
  readonly exited: Promise<QemuExit & { heapTop?: number }>;
  /** `memoryDiscarded`: nothing runs on this Memory again (a stop, or a
   * new boot on a fresh Memory), so there is no waiting for threads the
   * browser ends only by force, nor waking where they waited. */
  kill(options?: { memoryDiscarded?: boolean }): Promise<void>;
  /** The first half of kill(): QEMU's threads ended, nothing of this QEMU
   * writes the Memory any more. The exec path clears memory meanwhile;
   * kill() then ends the rest. */
  endThreads(): Promise<EndedThreads>;
  /** Ends the worker at once (no wait): the exec path's teardown. */
  terminate(): void;
  heapTop(): Promise<number>;
  /** The fds open on memfds now. */
  openMemfds(): Promise<OpenMemfd[]>;
  /** Started early: the exec it replaces came (instance.ts). */
  handOver(exec: HandOver): void;
  /** A QEMU started early will take this one's exec: its threads are
   * then left to kill(), not ended at the exec. */
  successorStarted(): void;
  /** `remove`: QEMU's file system lets go of the file, too. */
  readFile(path: string, remove?: boolean): Promise<Uint8Array | null>;
}

/** Between rounds of waking waiters, and after terminating a worker whose
 * threads did not all end (they may park once more before they go). */
const KILL_GRACE_MS = 20;

/** How long the instance worker gets to end QEMU's threads (it waits up to
 * 300 ms for cancelled threads) and reply to 'kill'. A worker busy in wasm
 * does not answer at all (seen: 5 s did not help); then the threads it
 * reported starting tell where to wake. */
const KILL_REPLY_MS = 1000;

/** Chromium ends a worker that is busy (in wasm, or blocked in a futex
 * wait) only by force, 2 s after terminate() (its forcible termination
 * delay); until then its thread runs on and may write the Memory. Seen:
 * a fallback QEMU started at once after a kill that got no answer crashed
 * with "memory access out of bounds". A thread that ended (cancelled) is
 * back in its event loop and ends at once. */
const FORCED_END_MS = 2500;

/** How long an instance worker gets to start QEMU's runtime ('launched').
 * Normally well under a second; seen never, in Firefox 153 with a
 * WebDriver BiDi session open (a worker's `new Worker()` that does not
 * return). Then the launch fails with the reason instead of waiting
 * forever, and a live update falls back to the old build. */
export const LAUNCH_REPLY_MS = 30_000;

/** At most this many rounds of waking the ended threads' waiters. */
const WAKE_ROUNDS = 150;


/** An instance worker started ahead of a live update, its build's glue
 * loaded and pthread workers running; staged (`stage`), it has its file
 * system filled and waits at the instantiation, so that the pause sends
 * only QEMU's arguments and the device state. Dispose it if it is not used. */
export interface SpareInstance {
  jsUrl: string;
  worker: Worker;
  stage?: InstanceStage;
  /** Settles once the stage is done (at once without one); never rejects. */
  ready: Promise<void>;
  dispose(): void;
}

function newInstanceWorker(name = 'qemu-instance'): Worker {
  return new Worker(new URL('./instance.worker.ts', import.meta.url), { type: 'module', name });
}

/** Settles on the worker's 'staged', or when it fails to load. */
function stagedMessage(worker: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      worker.removeEventListener('message', onMessage);
      worker.removeEventListener('error', done);
      resolve();
    };
    const onMessage = (ev: MessageEvent<FromInstance>): void => {
      if (ev.data.type === 'staged') done();
    };
    worker.addEventListener('message', onMessage);
    worker.addEventListener('error', done);
  });
}

export function prewarmInstance(jsUrl: string, stage?: InstanceStage): SpareInstance {
  const worker = newInstanceWorker(prewarmName(jsUrl, POOL_WORKERS));
  // Copied, not transferred: the host keeps the guest files for the next.
  if (stage) worker.postMessage({ type: 'stage', ...stage } satisfies ToInstance);
  const ready = stage ? stagedMessage(worker) : Promise.resolve();
  return { jsUrl, worker, stage, ready, dispose: () => worker.terminate() };
}

/** Whether a staged worker can run this launch: the same build, wasm
 * and Memory. */
function stagedFor(stage: InstanceStage | undefined, opts: InstanceLaunch): stage is InstanceStage {
  return stage !== undefined && stage.jsUrl === opts.jsUrl && stage.wasmUrl === opts.wasmUrl && stage.wasmModule === opts.wasmModule && stage.memory === opts.memory;
}

export function startInstance(opts: InstanceLaunch, spare?: SpareInstance): Promise<InstanceHandle> {
  // A spare staged for another launch cannot take this one.
  const usable = spare && spare.jsUrl === opts.jsUrl && (!spare.stage || stagedFor(spare.stage, opts)) ? spare : undefined;
  const worker = usable ? usable.worker : newInstanceWorker();
  if (spare && !usable) spare.dispose();
  const post = (m: ToInstance, transfer: Transferable[] = []): void => worker.postMessage(m, transfer);
  let stopped: StoppedThreads | undefined;
  /** QEMU's threads as the instance started them ('thread'). */
  const started: number[] = [];
  /** Wakes the words every KILL_GRACE_MS until none is woken. */
  const wakeUntilGone = async (words: readonly number[]): Promise<number[]> => {
    const rounds: number[] = [];
    for (let i = 0; opts.memory && words.length > 0 && i < WAKE_ROUNDS; i++) {
      const woken = wakeParked(opts.memory, words);
      rounds.push(woken);
      if (woken === 0) break;
      await new Promise((r) => setTimeout(r, KILL_GRACE_MS));
    }
    return rounds;
  };
  let settle!: (exit: QemuExit & { heapTop?: number }) => void;
  const exited = new Promise<QemuExit & { heapTop?: number }>((r) => (settle = r));
  let ended = false;
  const end = (exit: QemuExit & { heapTop?: number }): void => {
    if (ended) return;
    ended = true;
    settle(exit);
  };
  let nextId = 1;
  const replies = new Map<number, (v: ReplyValue) => void>();
  const ask = <T extends ReplyValue>(m: (id: number) => ToInstance, dead: T): Promise<T> =>
    ended
      ? Promise.resolve(dead)
      : new Promise<T>((resolve) => {
          const id = nextId++;
          replies.set(id, (v) => resolve(v as T));
          void exited.then(() => replies.get(id)?.(dead));
          post(m(id));
        });
  const terminate = (): void => {
    worker.terminate();
    end({ status: 137, message: 'killed' });
  };
  /**
   * Terminates the instance worker once QEMU's threads are ended, and
   * settles `exited` only when no ended thread waits on the Memory any
   * more: the next instance may start on it at once. A thread that did
   * not end (busy in wasm, or in a wait that is no cancellation point) is
   * ended by the browser only later, and only while its parent lives;
   * until then it stays listed as a waiter. Wake the words they were
   * parked on until nothing waits there: a thread of the old QEMU left
   * waiting on a word the next QEMU uses would take the one wake-up meant
   * for the new thread (seen as a new QEMU that never runs the VM, or a
   * main loop that stops).
   */
  const endWorker = async (exit: QemuExit & { heapTop?: number }, parked: StoppedThreads, whose: string, settleFirst = false): Promise<void> => {
    if (settleFirst) end(exit);
    // A thread that did not end, or the instance's own thread busy in wasm
    // (no answer to 'kill'): waking their words would let them run on.
    const mayRun = parked.left > 0 || !answered;
    // Every thread ended and the runtime quiet: nothing of this instance
    // waits anywhere, and the next instance may run already; waking its
    // words would only wake its own threads, again and again.
    const quiet = !mayRun && inert();
    const before = mayRun || quiet ? [] : await wakeUntilGone(parked.threads);
    const settling = threadsEndedAt + SETTLE_MS - performance.now();
    if (settling > 0) await new Promise((r) => setTimeout(r, settling));
    worker.terminate();
    // Threads that ended (cancelled) wait nowhere; the rounds below wake
    // the runtime's own mailbox wait until the worker is gone.
    if (mayRun) await new Promise((r) => setTimeout(r, FORCED_END_MS));
    // Without the instance's own report ('parked'), read the threads it
    // told of once they are stopped: one that ran when the words were
    // first read may have parked since.
    const late = !stopped && opts.memory ? parkedAddresses(opts.memory, started) : NO_THREADS;
    const after = quiet ? [] : await wakeUntilGone([...new Set([...parked.threads, ...parked.runtime, ...late.threads, ...late.runtime])]);
    if (parked !== NO_THREADS) opts.onLog(`[live-update] ended ${whose} threads: ${parked.cancelled} cancelled, ${parked.left} still running; ${quiet ? 'runtime quiet' : `woke parked waiters ${before.join(', ') || '-'} / after: ${after.join(', ') || '-'}`}`);
    end(exit);
  };
  let ending: Promise<void> | undefined;
  /** When the instance answered 'kill' (its threads ended): it is
   * terminated SETTLE_MS later, not sooner. */
  let threadsEndedAt = 0;
  /** Whether the instance answered 'kill' (else it is busy in wasm). */
  let answered = true;
  /** The instance answered 'kill' with every thread ended: its runtime
   * is quiet too ('parked'), so nothing of it touches the Memory. */
  const inert = (): boolean => stopped !== undefined && stopped.left === 0;
  let endingThreads: Promise<EndedThreads> | undefined;
  const endThreads = (): Promise<EndedThreads> =>
    (endingThreads ??= Promise.race([ask((id) => ({ type: 'kill', id }), 0), new Promise<number>((r) => setTimeout(() => r(0), KILL_REPLY_MS))]).then((heapTop) => {
      threadsEndedAt = performance.now();
      return { heapTop, inert: inert() };
    }));
  const handle: InstanceHandle = {
    write: (console, bytes) => post({ type: 'console', console, bytes }),
    exited,
    terminate,
    kill: async (options = {}) => {
      if (options.memoryDiscarded) {
        // Its threads are asked to end (cancelled, so that none spins on
        // until the browser ends it by force), then the worker goes.
        if (!ended && !ending) await endThreads();
        terminate();
        await exited;
        return;
      }
      // QEMU's pthread workers are nested in the instance worker; ending
      // that worker ends them only as it is torn down. Have it terminate
      // them first (its reply comes after the 'parked' report): a thread
      // of the old QEMU that still ran would write into the Memory the
      // next one uses.
      if (!ended && !ending) {
        const top = (await endThreads()).heapTop;
        answered = stopped !== undefined;
        // No answer: the worker is busy in wasm. Its threads end with it;
        // where they wait is read from the thread structs it told of.
        const parked = stopped ?? (opts.memory ? { ...parkedAddresses(opts.memory, started), cancelled: 0, left: started.length } : NO_THREADS);
        if (!stopped) opts.onLog(`[live-update] the instance did not answer 'kill' within ${KILL_REPLY_MS} ms; waking the words of the ${started.length} threads it started`);
        if (!ended) ending ??= endWorker({ status: 137, message: 'killed', heapTop: top || undefined }, parked, "the killed QEMU's");
      }
      // Also for a QEMU that exited by itself: its ended threads' waiters
      // are gone only once `ending` is done; whoever reuses the Memory
      // kills the instance first.
      await ending;
      await exited;
    },
    endThreads,
    heapTop: () => ask((id) => ({ type: 'heap-top', id }), 0),
    openMemfds: () => ask<OpenMemfd[]>((id) => ({ type: 'open-memfds', id }), []),
    // Copied: a fallback needs the device state again.
    handOver: (exec) => post({ type: 'hand-over', ...exec }),
    successorStarted: () => post({ type: 'successor-started' }),
    readFile: (path, remove = false) => ask<Uint8Array | null>((id) => ({ type: 'read-file', id, path, remove }), null),
  };
  return new Promise<InstanceHandle>((resolve, reject) => {
    const launchMs = opts.launchTimeoutMs ?? LAUNCH_REPLY_MS;
    const launchTimer = setTimeout(() => {
      const message = `the QEMU instance worker did not start QEMU within ${launchMs / 1000} s`;
      opts.onLog(message);
      worker.terminate();
      end({ status: 134, message });
      reject(new Error(message));
    }, launchMs);
    void exited.then(() => clearTimeout(launchTimer));
    worker.onerror = (ev) => {
      clearTimeout(launchTimer);
      const message = ev.message || 'the instance worker failed';
      // An uncaught error here is QEMU's (a trap in its runtime): log it
      // like the glue does, so the host reports it as QEMU's crash.
      opts.onLog(`Uncaught RuntimeError: ${message}`);
      ev.preventDefault();
      reject(new Error(message));
    };
    worker.onmessage = (ev: MessageEvent<FromInstance>) => {
      const m = ev.data;
      switch (m.type) {
        case 'launched':
          clearTimeout(launchTimer);
          resolve(handle);
          break;
        case 'launch-failed':
          worker.terminate();
          end({ status: 134, message: m.message });
          reject(new Error(m.message));
          break;
        case 'runtime-ready':
          opts.onRuntimeReady?.(m.at);
          break;
        case 'awaiting-exec':
          opts.onAwaitingExec?.(m.at);
          break;
        case 'console':
          opts.onConsole(m.console, m.bytes);
          break;
        case 'log':
          opts.onLog(m.line);
          break;
        case 'exit':
          ending ??= endWorker(
            { status: m.status, message: m.message, heapTop: m.heapTop },
            m.parked ?? NO_THREADS,
            'the exited QEMU\'s',
            // Reported at once (a start-up error shows without delay);
            // kill() waits for the rest before the Memory is reused.
            true,
          );
          // An exit during start-up: the launch resolves with a dead instance.
          resolve(handle);
          break;
        case 'exec':
          opts.onExec?.(m.request);
          break;
        case 'unread':
          opts.onUnread?.(m.console, m.bytes);
          break;
        case 'exec-refused':
          opts.onExecRefused?.(m.argv, m.reason);
          break;
        case 'captured':
          opts.onCapture?.(m.capture);
          break;
        case 'parked':
          stopped = m.stopped;
          break;
        case 'thread':
          started.push(m.thread);
          break;
        case 'staged':
          break;
        case 'reply':
          replies.get(m.id)?.(m.value);
          replies.delete(m.id);
          break;
      }
    };
    const staged = usable?.stage;
    if (staged) {
      // Only what the stage did not bring: the same bytes are not sent twice.
      const files = Object.fromEntries(Object.entries(opts.files).filter(([path, bytes]) => staged.files[path] !== bytes));
      const buffers = new Set(Object.values(files).map((b) => b.buffer));
      post({ type: 'run', argv: opts.argv, files, env: opts.env, adopt: opts.adopt, early: opts.early }, opts.transfer?.filter((b) => buffers.has(b)));
      return;
    }
    const launch: ToInstance = {
      type: 'launch',
      jsUrl: opts.jsUrl,
      wasmUrl: opts.wasmUrl,
      wasmModule: opts.wasmModule,
      memory: opts.memory,
      argv: opts.argv,
      files: opts.files,
      env: opts.env,
      adopt: opts.adopt,
      early: opts.early,
      execNames: opts.execNames,
    };
    post(launch, opts.transfer);
  });
}
