// Types for the part of an Emscripten-built QEMU module that the host uses.
// Runs wherever the module runs: a dedicated Worker or Node; never the DOM.
// Hand-written from the link flags in wasm/steps/qemu.sh (MODULARIZE,
// EXPORT_ES6, EXPORTED_RUNTIME_METHODS=FS,ENV,...); keep them in step.

export interface EmscriptenStream {
  readonly node: EmscriptenNode;
  flags: number;
  fd?: number;
}

export interface EmscriptenNode {
  notifyListeners(flags: number): void;
}

export interface DeviceOps {
  open?(stream: EmscriptenStream): void;
  close?(stream: EmscriptenStream): void;
  read(stream: EmscriptenStream, buffer: Uint8Array, offset: number, length: number, position: number): number;
  write(stream: EmscriptenStream, buffer: Uint8Array, offset: number, length: number, position: number): number;
  poll?(stream: EmscriptenStream): number;
}

export interface EmscriptenFS {
  /** `canOwn`: MEMFS keeps `data` as the file's contents instead of a copy. */
  writeFile(path: string, data: Uint8Array, opts?: { canOwn?: boolean }): void;
  readFile(path: string): Uint8Array;
  mkdirTree(path: string): void;
  mkdev(path: string, mode: number, dev?: number): void;
  makedev(major: number, minor: number): number;
  registerDevice(dev: number, ops: DeviceOps): void;
  ErrnoError: new (errno: number) => Error;
  lookupPath(path: string): { node: EmscriptenNode };
  create(path: string, mode?: number): EmscriptenNode;
  open(path: string, flags: number, mode?: number): EmscriptenStream;
  close(stream: EmscriptenStream): void;
  unlink(path: string): void;
  dupStream(stream: EmscriptenStream, fd?: number): EmscriptenStream;
  /** Open streams, indexed by fd. */
  streams: (EmscriptenStream | null | undefined)[];
}

/** What the host passes to the factory (Emscripten's "Module" object). */
export interface ModuleOptions {
  /** argv[0]. */
  thisProgram: string;
  arguments: string[];
  locateFile(path: string, prefix: string): string;
  print(text: string): void;
  printErr(text: string): void;
  preRun: Array<(module: QemuModule) => void>;
  onExit(status: number): void;
  onAbort(what: unknown): void;
  /** Called instead of the environment's own exit (process.exit in Node). */
  quit(status: number, toThrow: unknown): void;
  /** The shared Memory to run on (the build links -sIMPORTED_MEMORY). */
  wasmMemory?: WebAssembly.Memory;
  /** Instantiates from an already compiled module (no compile here). */
  instantiateWasm?(
    imports: WebAssembly.Imports,
    receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
  ): void;
  onRuntimeInitialized?(): void;
  /** cpr-exec (wasm/emscripten/cpr-exec.js): 0 = accepted, or -errno. */
  onExec?(argv: string[], env: string[]): number;
  /** memfd_create (wasm/emscripten/memfd.js): an fd; throws an FS error. */
  cprMemfdCreate?(name: string, flags: number): number;
  /** The cpr-early series: QEMU asks, on reaching its CPR state, whether
   * it was started before the exec it replaces (1) or not (0). If so it
   * waits on the futex word at `word` until the host stores the CPR
   * state's fd + 1 there (or -errno). */
  qemuWasmAwaitExec?(word: number): number;
}

export interface QemuModule {
  FS: EmscriptenFS;
  ENV: Record<string, string>;
  /** Present once the runtime is up; ends the runtime and its pthreads. */
  PThread?: {
    /** Terminates every pthread's worker, and makes this thread's mailbox
     * ignore whatever they still send (its pthread_self() is 0 after). */
    terminateRuntime(): void;
    /** Running threads, by pthread_t. */
    pthreads: Record<string, unknown>;
    /** The pool: workers with no thread (loaded once the runtime starts). */
    unusedWorkers: unknown[];
    /** A pool worker more (what the glue does PTHREAD_POOL_SIZE times). */
    allocateUnusedWorker(): unknown;
    /** Loads the module into a worker: then a thread starts on it at once. */
    loadWasmModuleToWorker(worker: unknown): Promise<unknown>;
  };
  /** Live-update builds: the memory layout their JS library speaks. */
  cprLayout?: string;
  /** Live-update builds: where their static data starts (memory.ts). */
  cprStaticBase?: number;
  /** Live-update builds: this instance's sbrk top. */
  cprHeapTop?(): number;
  /** Live-update builds export it (wasm/steps/qemu.sh): the host ends
   * QEMU's threads with it when QEMU exec's. */
  _pthread_cancel?(thread: number): number;
}

export type QemuFactory = (options: Partial<ModuleOptions>) => Promise<QemuModule>;

// errno values of Emscripten (its own numbering: EAGAIN is 6, Linux's is
// 11); poll and mode bits as Linux's, which Emscripten's musl keeps.
export const EAGAIN = 6;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const S_IFCHR = 0o020000;
