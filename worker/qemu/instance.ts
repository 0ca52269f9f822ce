// One running QEMU: an instance of the Emscripten module, its serial and
// monitor devices, and its exit. Runs on the thread that hosts the module
// (a dedicated Worker, or Node's main thread); never touches the DOM.

import { JsCharDevice } from './chardev';
import { MONITOR_DEVICE, SERIAL_DEVICE } from './consoles';
import type { ModuleOptions, QemuFactory, QemuModule } from './emscripten';

export interface QemuLaunchOptions {
  /** URL of qemu-system-<arch>.js, the Emscripten ES module (file: URL in Node). */
  jsUrl: string;
  /** URL of the matching .wasm. */
  wasmUrl: string;
  /** Arguments after the program name. */
  argv: string[];
  /** Files written into the Emscripten FS before QEMU starts, by absolute path. */
  files: Record<string, Uint8Array>;
  /** Guest serial output. */
  onSerial(bytes: Uint8Array): void;
  /** HMP monitor output. */
  onMonitor(bytes: Uint8Array): void;
  /** QEMU's own stdout and stderr, a line at a time (its error messages). */
  onLog(line: string): void;
}

export interface QemuExit {
  status: number;
  /** Why it ended, when QEMU aborted or could not start. */
  message?: string;
}

export interface QemuInstance {
  writeSerial(bytes: Uint8Array): void;
  writeMonitor(bytes: Uint8Array): void;
  /** Settles once QEMU has exited, whatever the reason. */
  readonly exited: Promise<QemuExit>;
  /** Ends QEMU and all its pthread workers. */
  kill(): Promise<void>;
}

function isFactory(value: unknown): value is QemuFactory {
  return typeof value === 'function';
}

export async function launchQemu(opts: QemuLaunchOptions): Promise<QemuInstance> {
  const glue: { default?: unknown } = await import(/* @vite-ignore */ opts.jsUrl);
  if (!isFactory(glue.default)) {
    throw new Error(`${opts.jsUrl} is not a QEMU build: it has no default export (createQemu)`);
  }
  const serial = new JsCharDevice(SERIAL_DEVICE, opts.onSerial);
  const monitor = new JsCharDevice(MONITOR_DEVICE, opts.onMonitor);

  let settle!: (exit: QemuExit) => void;
  const exited = new Promise<QemuExit>((resolve) => { settle = resolve; });
  let ended = false;
  const end = (exit: QemuExit): void => {
    if (ended) return;
    ended = true;
    settle(exit);
  };

  // The module object, known from preRun on (before the factory resolves,
  // which start-up errors can prevent).
  let loaded: QemuModule | undefined;
  const options: Partial<ModuleOptions> = {
    // argv[0]: QEMU names itself in every error message.
    thisProgram: programName(opts.jsUrl),
    arguments: opts.argv,
    locateFile: (path) => (path.endsWith('.wasm') ? opts.wasmUrl : new URL(path, opts.jsUrl).href),
    print: (line) => opts.onLog(line),
    printErr: (line) => opts.onLog(line),
    preRun: [
      (module) => {
        loaded = module;
        for (const [path, data] of Object.entries(opts.files)) {
          module.FS.mkdirTree(path.slice(0, path.lastIndexOf('/')) || '/');
          module.FS.writeFile(path, data);
        }
        serial.install(module.FS, 64);
        monitor.install(module.FS, 65);
      },
    ],
    // exit() in QEMU arrives here (wasm/emscripten/exit.js); stop QEMU's
    // pthreads, or the vCPU thread would run on.
    onExit: (status) => {
      loaded?.PThread?.terminateAllThreads();
      end({ status });
    },
    onAbort: (what) => end({ status: 134, message: `QEMU aborted: ${String(what)}` }),
  };

  let module: QemuModule;
  try {
    module = await glue.default(options);
  } catch (err) {
    // A failed instantiation, or an exit during start-up (bad arguments).
    if (ended) return deadInstance(exited);
    throw err;
  }

  return {
    writeSerial: (bytes) => serial.input(bytes),
    writeMonitor: (bytes) => monitor.input(bytes),
    exited,
    kill: async () => {
      module.PThread?.terminateAllThreads();
      end({ status: 137, message: 'killed' });
      await exited;
    },
  };
}

/** "qemu-system-arm" for ".../qemu-system-arm.js". */
export function programName(jsUrl: string): string {
  const file = new URL(jsUrl).pathname.split('/').pop() ?? 'qemu';
  return file.replace(/\.m?js$/, '');
}

function deadInstance(exited: Promise<QemuExit>): QemuInstance {
  return {
    writeSerial: () => undefined,
    writeMonitor: () => undefined,
    exited,
    kill: async () => { await exited; },
  };
}
