// Types for the part of an Emscripten-built QEMU module that the host uses.
// Runs wherever the module runs: a dedicated Worker or Node; never the DOM.
// Hand-written from the link flags in wasm/steps/qemu.sh (MODULARIZE,
// EXPORT_ES6, EXPORTED_RUNTIME_METHODS=FS,ENV,...); keep them in step.

export interface EmscriptenStream {
  readonly node: EmscriptenNode;
  flags: number;
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
  writeFile(path: string, data: Uint8Array): void;
  readFile(path: string): Uint8Array;
  mkdirTree(path: string): void;
  mkdev(path: string, mode: number, dev?: number): void;
  makedev(major: number, minor: number): number;
  registerDevice(dev: number, ops: DeviceOps): void;
  ErrnoError: new (errno: number) => Error;
  lookupPath(path: string): { node: EmscriptenNode };
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
  wasmMemory?: WebAssembly.Memory;
}

export interface QemuModule {
  FS: EmscriptenFS;
  ENV: Record<string, string>;
  /** Present once the runtime is up; ends the runtime and its pthreads. */
  PThread?: { terminateAllThreads(): void };
}

export type QemuFactory = (options: Partial<ModuleOptions>) => Promise<QemuModule>;

// errno and poll values of Emscripten's musl (they match Linux's).
export const EAGAIN = 6;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const S_IFCHR = 0o020000;
