// One running QEMU: an instance of the Emscripten module, its console
// devices (serial, HMP, QMP), and its exit. Runs on the thread that hosts the module
// (a dedicated Worker, or Node's main thread); never touches the DOM.

import { installFileGrowth } from './file-growth';
import { JsCharDevice } from './chardev';
import { CARRIED_CONSOLES, CONSOLE_DEVICES, CONSOLES, type ConsoleName } from './consoles';
import type { ModuleOptions, QemuFactory, QemuModule } from './emscripten';
import { MemfdFs, type OpenMemfd } from './memfd';
import { LAYOUT_TAG } from './memory';
import { addPoolWorkers, EXTRA_POOL_WORKERS } from './pthread-pool';
import { loadPoolAhead } from './pool-ahead';
import { NO_THREADS, parkedAddresses, SETTLE_MS, threadExited, type StoppedThreads } from './parked';

/** How long cancelled QEMU threads get to end before their workers are
 * terminated anyway (then by force, ~2 s later in Chromium). */
const CANCEL_WAIT_MS = 300;
/** The variable that names the CPR state's fd after an exec. */
const CPR_EXEC_STATE = 'QEMU_CPR_EXEC_STATE';
/** Emscripten's EIO (its own numbering). */
const EIO = 29;

/** What QEMU's exec of cpr-exec-command hands to the host. */
export interface ExecRequest {
  argv: string[];
  /** KEY=VALUE, QEMU's environ (QEMU_CPR_EXEC_STATE among them). */
  env: string[];
  /** memfds open at exec: the next instance reopens them. */
  open: OpenMemfd[];
  /** This instance's heap top: the next one clears up to here. */
  heapTop: number;
  /** Migration files named by `-incoming file:PATH` in argv, read out of
   * this instance's FS (the device state). */
  files: Record<string, Uint8Array>;
  /** When QEMU called exec (wall clock, ms). */
  at: number;
  /** Console input this instance had not read yet: the next instance's
   * consoles get it first (keys typed, a file in transfer). */
  unread: ConsoleBytes;
}

/** Bytes for some of QEMU's consoles. */
export type ConsoleBytes = Partial<Record<ConsoleName, Uint8Array>>;

/** Paths of `-incoming file:PATH` (and `migrate ... file:PATH`) in argv. */
export function incomingFiles(argv: readonly string[]): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (argv[i - 1] === '-incoming' && a.startsWith('file:')) out.push(a.slice(5).split(',')[0]!);
  });
  return out;
}

/** What an instance needs before QEMU's command line is known: a live
 * update stages the next instance before the VM stops (stageQemu()). */
export interface QemuStageOptions {
  /** URL of qemu-system-<arch>.js, the Emscripten ES module (file: URL in Node). */
  jsUrl: string;
  /** URL of the matching .wasm. */
  wasmUrl: string;
  /** Files written into the Emscripten FS before QEMU starts, by absolute path. */
  files: Record<string, Uint8Array>;
  /** The files' bytes are this instance's alone: its file system keeps
   * them instead of a copy (QEMU may write into them). [false] */
  ownFiles?: boolean;
  /** Output of one of QEMU's consoles (guest serial, HMP, QMP). */
  onConsole(console: ConsoleName, bytes: Uint8Array): void;
  /** QEMU's own stdout and stderr, a line at a time (its error messages). */
  onLog(line: string): void;
  /** Run on this shared Memory (live-update builds); else the module
   * makes its own. */
  memory?: WebAssembly.Memory;
  /** The build's wasm, compiled before (no compile on this path). With it,
   * staging goes as far as the instantiation. */
  wasmModule?: WebAssembly.Module;
  /** QEMU exec'd (cpr-exec): return 0 to accept or -errno to refuse. Called
   * synchronously on this thread; QEMU's thread waits for the answer. */
  onExec?(request: ExecRequest): number;
  /** Console input that came after an accepted exec: this QEMU reads no
   * more, the next one should (the host holds it for that one). */
  onUnread?(console: ConsoleName, bytes: Uint8Array): void;
  /** The runtime is up and QEMU's main() is about to run. */
  onRuntimeReady?(): void;
  /** Started early: QEMU reached its CPR state and waits for handOver(). */
  onAwaitingExec?(): void;
  /** Loads the module into the glue's pthread pool while the instance
   * itself instantiates, rather than after (pool-ahead.ts; browser only). */
  poolAhead?: boolean;
}

/** What starts QEMU on a staged instance. */
export interface QemuRunOptions {
  /** Arguments after the program name. */
  argv: string[];
  /** More files for QEMU's FS (a migration's device state). */
  files?: Record<string, Uint8Array>;
  /** Environment variables for QEMU (QEMU_CPR_EXEC_STATE after exec). */
  env?: Record<string, string>;
  /** memfds of the previous instance to reopen under the same fds. */
  adopt?: OpenMemfd[];
  /** Started before the exec it replaces (the cpr-early series): QEMU
   * runs up to its CPR state and waits there for handOver(). `adopt` is
   * then what the running QEMU has open, and nothing is freed yet. */
  early?: boolean;
}

/** The exec that an instance started early takes over (handOver()). */
export interface HandOver {
  /** The exec's environment, KEY=VALUE (QEMU_CPR_EXEC_STATE among them). */
  env: string[];
  /** The fds open on memfds at the exec. */
  open: OpenMemfd[];
  /** The device state and any other file the exec carried, by absolute path. */
  files: Record<string, Uint8Array>;
}

export type QemuLaunchOptions = QemuStageOptions & QemuRunOptions;

/** An instance staged: its glue loaded, its file system filled and, with
 * a compiled module, the glue waiting at the instantiation. run() starts
 * QEMU; an instance never run is dropped with its worker. */
export interface StagedQemu {
  run(opts: QemuRunOptions): Promise<QemuInstance>;
}

export interface QemuExit {
  status: number;
  /** Why it ended, when QEMU aborted or could not start. */
  message?: string;
  /** QEMU ended itself (exit or abort) with threads running: the futex
   * words they were parked on, for the host to wake (parked.ts). */
  parked?: StoppedThreads;
}

export interface QemuInstance {
  /** The top of this instance's heap (0 when the build cannot tell). */
  heapTop(): number;
  /** The fds open on memfds now (what an exec would hand on). */
  openMemfds(): OpenMemfd[];
  /** Started early: the exec it replaces came. Reopens the exec's fds,
   * writes its files and lets QEMU go on from its CPR state, now or once
   * QEMU gets there. If that fails, QEMU exits, saying so. */
  handOver(exec: HandOver): void;
  /** A file of QEMU's FS (e.g. a migration file) in a buffer of its own,
   * or null. `remove`: removed from the FS as well. */
  readFile(path: string, remove?: boolean): Uint8Array | null;
  /** Input for one of QEMU's consoles. */
  write(console: ConsoleName, bytes: Uint8Array): void;
  /** Settles once QEMU has exited, whatever the reason. */
  readonly exited: Promise<QemuExit>;
  /** Ends QEMU and all its pthread workers. */
  kill(): Promise<void>;
  /** Ends QEMU's pthreads (cancelled, then their workers terminated)
   * before this thread ends; returns the words to wake (parked.ts). When
   * it returns, no thread of this QEMU writes the Memory any more (the
   * runtime on this thread idles); this worker must still live SETTLE_MS
   * for the terminated workers to go. */
  stopThreads(): Promise<StoppedThreads>;
}

function isFactory(value: unknown): value is QemuFactory {
  return typeof value === 'function';
}

export async function launchQemu(opts: QemuLaunchOptions): Promise<QemuInstance> {
  return (await stageQemu(opts)).run({ argv: opts.argv, env: opts.env, adopt: opts.adopt });
}

/** Does everything of an instance's start that needs no command line:
 * the rest of the start is what a live update's pause pays for. */
export async function stageQemu(opts: QemuStageOptions): Promise<StagedQemu> {
  const glue: { default?: unknown } = await import(/* @vite-ignore */ opts.jsUrl);
  if (!isFactory(glue.default)) {
    throw new Error(`${opts.jsUrl} is not a QEMU build: it has no default export (createQemu)`);
  }
  const factory = glue.default;
  const devices = new Map(CONSOLES.map((c) => [c, new JsCharDevice(CONSOLE_DEVICES[c].path, (b) => opts.onConsole(c, b))] as const));

  let settle!: (exit: QemuExit) => void;
  const exited = new Promise<QemuExit>((resolve) => { settle = resolve; });
  let ended = false;
  const end = (exit: QemuExit): void => {
    if (ended) return;
    ended = true;
    settle(exit);
  };
  /** QEMU ended itself: end its pthreads (else the vCPU thread would run
   * on), and report where they were parked. A thread of this QEMU left
   * waiting on a futex word takes the wake-up meant for the next QEMU's
   * thread on the same Memory (parked.ts): seen as a fallback QEMU that
   * never ran the VM after the new build exited on a bad device state. */
  let exiting = false;
  const endItself = (exit: QemuExit): void => {
    if (exiting || ended) return;
    exiting = true;
    // QEMU's exit comes as a call that this thread runs from its mailbox,
    // whose loop takes the mailbox's lock again once the call returns. A
    // thread terminated while it held that lock would leave this thread
    // spinning forever (read as the cause of a CI run whose smoke test hung
    // after an i386 quit; not reproduced here). So the threads end from the
    // event loop, after that loop is done.
    setTimeout(() => {
      const threads = listedThreads(loaded);
      const memory = opts.memory;
      const left = memory ? threads.filter((t) => !threadExited(memory, t)).length : 0;
      endRuntime(loaded);
      if (!memory || threads.length === 0) {
        end(exit);
        return;
      }
      setTimeout(() => end({ ...exit, parked: { ...parkedAddresses(memory, threads), cancelled: 0, left } }), SETTLE_MS);
    }, 0);
  };

  // The module object, known from preRun on (before the factory resolves,
  // which start-up errors can prevent).
  let loaded: QemuModule | undefined;
  let memfds: MemfdFs | undefined;
  const heapTop = (): number => loaded?.cprHeapTop?.() ?? 0;
  /** The command line and the rest that run() brings. */
  let runWith: QemuRunOptions | undefined;
  let go!: () => void;
  const going = new Promise<void>((resolve) => (go = resolve));
  // Filled by run(): the glue keeps this array and reads it at main().
  const args: string[] = [];
  /** Guest files and devices go into the file system once, as soon as
   * the glue made it (at staging), else in preRun. */
  let populated = false;
  const populate = (module: QemuModule, inPreRun: boolean): void => {
    if (populated) return;
    populated = true;
    installFileGrowth(module.FS);
    writeFiles(module, opts.files, opts.ownFiles === true);
    for (const [c, device] of devices) device.install(module.FS, CONSOLE_DEVICES[c].major);
    // Before preRun the glue loads these with its own pool (after the
    // instantiation); in preRun its loading has begun without them.
    addPoolWorkers(module, EXTRA_POOL_WORKERS, inPreRun);
  };
  const options: Partial<ModuleOptions> = {
    // argv[0]: QEMU names itself in every error message.
    thisProgram: programName(opts.jsUrl),
    arguments: args,
    locateFile: (path) => (path.endsWith('.wasm') ? opts.wasmUrl : new URL(path, opts.jsUrl).href),
    print: (line) => opts.onLog(line),
    printErr: (line) => opts.onLog(line),
    preRun: [
      (module) => {
        loaded = module;
        const run = runWith!;
        if (opts.memory) {
          if (module.cprLayout !== LAYOUT_TAG) {
            throw new Error(`${programName(opts.jsUrl)} speaks memory layout ${module.cprLayout ?? '(none)'}, not ${LAYOUT_TAG}`);
          }
          memfds = new MemfdFs(opts.memory, module.FS);
          // Before FS.init opens fds 0-2: those are taken in the old
          // instance too, so adopted fds never collide with them.
          if (run.adopt) memfds.adopt(run.adopt, run.early === true);
          memfds.installShm();
          memfds.installSharedFileMaps();
        }
        populate(module, true);
        for (const [k, v] of Object.entries(run.env ?? {})) module.ENV[k] = v;
        // The run's own files (the device state): kept as they are when
        // the bytes are this instance's alone (ownFiles), else copied.
        writeFiles(module, run.files ?? {}, opts.ownFiles === true);
      },
    ],
    // exit() in QEMU arrives here (wasm/emscripten/exit.js).
    onExit: (status) => endItself({ status }),
    onAbort: (what) => endItself({ status: 134, message: `QEMU aborted: ${String(what)}` }),
    onRuntimeInitialized: () => opts.onRuntimeReady?.(),
  };
  /** Started early: the futex word QEMU waits on at its CPR state, and
   * the exec if it came before QEMU got there. */
  let awaitWord = 0;
  let handedOver: HandOver | undefined;
  options.qemuWasmAwaitExec = (word) => {
    if (!runWith?.early) return 0;
    awaitWord = word;
    opts.onAwaitingExec?.();
    if (handedOver) takeOver(handedOver);
    return 1;
  };
  /** Reopens the exec's fds, writes its files and lets QEMU's main
   * thread go on from its CPR state with the state's fd, or with EIO
   * (QEMU exits, saying so; the reason is logged here). */
  const takeOver = (exec: HandOver): void => {
    const words = new Int32Array(opts.memory!.buffer);
    let value: number;
    try {
      if (!memfds || !loaded) throw new Error('the runtime has no memfds');
      const fds = memfds.takeOver(exec.open);
      writeFiles(loaded, exec.files, opts.ownFiles === true);
      const state = Number(exec.env.find((e) => e.startsWith(`${CPR_EXEC_STATE}=`))?.slice(CPR_EXEC_STATE.length + 1));
      const here = fds.get(state);
      if (here === undefined) throw new Error(`the exec's ${CPR_EXEC_STATE} (${state}) is no memfd it handed on`);
      value = here + 1;
    } catch (e) {
      opts.onLog(`cpr-exec: the exec could not be handed over: ${e instanceof Error ? e.message : String(e)}`);
      value = -EIO;
    }
    Atomics.store(words, awaitWord >> 2, value);
    Atomics.notify(words, awaitWord >> 2);
  };
  if (opts.memory) {
    options.wasmMemory = opts.memory;
    options.cprMemfdCreate = (name) => {
      if (!memfds) throw new Error('memfd_create before the runtime started');
      return memfds.create(name);
    };
  }
  if (opts.wasmModule) {
    const compiled = opts.wasmModule;
    const memory = opts.memory;
    // The glue waits here from staging until run(): instantiating runs
    // the module's memory init, which a live update may do only once the
    // old instance's memory is cleared.
    options.instantiateWasm = (imports, receive) => {
      void going
        .then(() => {
          const pool = (options as Partial<QemuModule>).PThread;
          if (opts.poolAhead && memory && pool) loadPoolAhead(pool.unusedWorkers, options, memory, compiled);
          return WebAssembly.instantiate(compiled, imports);
        })
        .then(
          (instance) => receive(instance, compiled),
          (e: unknown) => {
            opts.onLog(`failed to instantiate the wasm: ${e instanceof Error ? e.message : String(e)}`);
            end({ status: 134, message: `failed to instantiate: ${e instanceof Error ? e.message : String(e)}` });
          },
        );
    };
  }
  /** An exec was accepted: input goes back to the host from now on. */
  let execd = false;
  const onExec = opts.onExec;
  if (onExec) {
    options.onExec = (argv, env) => {
      const files: Record<string, Uint8Array> = {};
      for (const path of incomingFiles(argv)) {
        try {
          files[path] = loaded!.FS.readFile(path);
        } catch {
          /* the next instance reports the missing file itself */
        }
      }
      const unread: ConsoleBytes = {};
      for (const c of CARRIED_CONSOLES) {
        const bytes = devices.get(c)!.takeUnread();
        if (bytes) unread[c] = bytes;
      }
      const status = onExec({ argv, env, open: memfds?.snapshot() ?? [], heapTop: heapTop(), files, at: performance.timeOrigin + performance.now(), unread });
      if (status === 0) execd = true;
      else for (const [c, bytes] of Object.entries(unread) as [ConsoleName, Uint8Array][]) devices.get(c)!.putBack(bytes);
      return status;
    };
  }

  /** Calls the glue; it runs up to the instantiation at once (its file
   * system made), then waits for run() if the wasm is compiled already. */
  const create = (): Promise<QemuModule | null> => {
    // A failed instantiation from a compiled module ends the instance
    // while the factory waits for it forever.
    const created = Promise.race([factory(options), exited.then(() => null)]);
    created.catch(() => undefined);
    const made = options as Partial<QemuModule>;
    if (made.FS && made.ENV && made.PThread) populate(made as QemuModule, false);
    return created;
  };
  const staged = opts.wasmModule ? create() : null;

  return {
    run: async (run) => {
      if (runWith) throw new Error('this QEMU instance runs already');
      runWith = run;
      args.push(...run.argv);
      go();
      let module: QemuModule;
      try {
        const created = await (staged ?? create());
        if (!created) return deadInstance(exited);
        module = created;
      } catch (err) {
        // A failed instantiation, or an exit during start-up (bad arguments).
        if (ended || exiting) return deadInstance(exited);
        throw err;
      }
      return instanceOf(module);
    },
  };

  function instanceOf(module: QemuModule): QemuInstance {
    return {
      heapTop,
      openMemfds: () => memfds?.snapshot() ?? [],
      handOver: (exec) => {
        if (!runWith?.early || !opts.memory) throw new Error('this instance was not started early');
        if (handedOver) throw new Error('the exec was handed over already');
        handedOver = exec;
        if (awaitWord) takeOver(exec);
      },
      readFile: (path, remove = false) => {
        let bytes: Uint8Array;
        try {
          bytes = module.FS.readFile(path);
        } catch {
          return null;
        }
        if (remove) module.FS.unlink(path);
        return bytes;
      },
      write: (console, bytes) => {
        if (!execd || !opts.onUnread) devices.get(console)!.input(bytes);
        else if (CARRIED_CONSOLES.includes(console)) opts.onUnread(console, bytes);
      },
      exited,
      stopThreads: async () => {
        const listed = (): number[] => listedThreads(module);
        const threads = listed();
        const running = (): number[] => (opts.memory ? listed().filter((t) => !threadExited(opts.memory!, t)) : listed());
        // Cancel them (QEMU idles in cancellation points: condition waits,
        // sleeps; its exec hook gave up the BQL): each ends through
        // pthread_exit and its worker returns to its event loop, where
        // terminate() ends it at once. A worker still busy in wasm is ended
        // by the browser only by force, ~2 s later (Chromium). Wait for the
        // runtime (this thread's event loop) to take the ended ones back.
        if (opts.memory && module._pthread_cancel) {
          for (const t of threads) module._pthread_cancel(t);
          const deadline = performance.now() + CANCEL_WAIT_MS;
          while (running().length > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
        }
        const left = running().length;
        endRuntime(module);
        // A cancelled thread that ended waits nowhere any more; one that was
        // still running when terminated may park once more before it stops.
        if (left > 0) await new Promise((r) => setTimeout(r, SETTLE_MS));
        const parked = opts.memory ? parkedAddresses(opts.memory, threads) : { threads: [], runtime: [] };
        return { ...parked, cancelled: opts.memory && module._pthread_cancel ? threads.length : 0, left };
      },
      kill: async () => {
        endRuntime(module);
        end({ status: 137, message: 'killed' });
        await exited;
      },
    };
  }
}

/** Writes files into QEMU's file system, directories made as needed. */
function writeFiles(module: QemuModule, files: Record<string, Uint8Array>, own: boolean): void {
  for (const [path, data] of Object.entries(files)) {
    module.FS.mkdirTree(path.slice(0, path.lastIndexOf('/')) || '/');
    module.FS.writeFile(path, data, { canOwn: own });
  }
}

/** Ends QEMU's threads and this thread's part in the runtime: a thread
 * terminated in the middle of a call to this one may hold the lock of
 * this thread's mailbox, so the mailbox must not be read any more. */
function endRuntime(module: QemuModule | undefined): void {
  module?.PThread?.terminateRuntime();
}

/** The threads the runtime lists (their `struct pthread` addresses). */
function listedThreads(module: QemuModule | undefined): number[] {
  return Object.keys(module?.PThread?.pthreads ?? {}).map(Number);
}

/** "qemu-system-arm" for ".../qemu-system-arm.js". */
export function programName(jsUrl: string): string {
  const file = new URL(jsUrl).pathname.split('/').pop() ?? 'qemu';
  return file.replace(/\.m?js$/, '');
}

function deadInstance(exited: Promise<QemuExit>): QemuInstance {
  return {
    heapTop: () => 0,
    openMemfds: () => [],
    handOver: () => undefined,
    readFile: () => null,
    write: () => undefined,
    exited,
    stopThreads: async () => NO_THREADS,
    kill: async () => { await exited; },
  };
}
