// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// A build's first start in a page costs more than its later ones: the
// browser compiles a wasm function the first time it runs (Chromium's lazy
// compilation), and QEMU's start runs thousands of them. In a live update
// that first start is in the guest's pause (measured: QEMU init 382 ms for
// the first update to a build, 97 ms for the next). So before a build's
// first update, it runs once off to the side: the guest's own command line
// with the VM never started (-S), on a Memory of its own, until QEMU
// answers on QMP; then it is ended. The code compiled on the way stays with
// the compiled module, which every instance worker shares, and the start in
// the pause finds it compiled.
import { PlaygroundError } from './api';
import type { QemuBackend, QemuInstanceLike } from './backend';
import { QmpClient } from './qmp';

/** What a warm-up start needs: the build, compiled, and the guest's
 * command line and files. */
export interface WarmUpRequest {
  jsUrl: string;
  wasmUrl: string;
  module: WebAssembly.Module;
  /** The guest's QEMU arguments (no -incoming). */
  argv: string[];
  files: Record<string, Uint8Array>;
  env: Record<string, string>;
}

/** Its start is over long before this (~0.5 s); a slower one is left. */
export const WARM_UP_TIMEOUT_MS = 10_000;

/** Starts the build once with the VM stopped and ends it once QEMU runs
 * its main loop; resolves with how long that took (ms). Never rejects:
 * a failed warm-up only leaves the first start cold. `signal`: end it now
 * (a pause began: it must not take the CPU from the new QEMU). */
export async function warmUp(
  backend: QemuBackend,
  req: WarmUpRequest,
  signal?: AbortSignal,
  timeoutMs = WARM_UP_TIMEOUT_MS,
): Promise<number | null> {
  if (!backend.createMemory || signal?.aborted) return null;
  const t0 = performance.now();
  let instance: QemuInstanceLike | null = null;
  const qmp = new QmpClient((b) => instance?.write('qmp', b));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    instance = await backend.launch({
      jsUrl: req.jsUrl,
      wasmUrl: req.wasmUrl,
      wasmModule: req.module,
      memory: backend.createMemory(),
      argv: [...req.argv, '-S'],
      files: req.files,
      env: req.env,
      onConsole: (console, bytes) => {
        if (console === 'qmp') qmp.feed(bytes);
      },
      onLog: () => undefined,
    });
    const gone = instance.exited.then(() => Promise.reject(new Error('QEMU ended')));
    gone.catch(() => undefined); // it ends, later, by kill() below
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('too slow')), timeoutMs)));
    const aborted = new Promise<never>((_, reject) => {
      if (signal?.aborted) reject(new Error('aborted'));
      signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
    await Promise.race([qmp.status(timeoutMs), gone, late, aborted]);
    return Math.round(performance.now() - t0);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    qmp.close(new PlaygroundError('bad-state', 'the warm-up QEMU was ended'));
    // Its Memory is its own: nothing waits for its threads.
    await instance?.kill({ memoryDiscarded: true });
  }
}

/** Which builds ran in this page: each is warmed up once, before its
 * first update; the one a boot started is warm already. */
export class WarmUps {
  private readonly done = new Map<string, Promise<void>>();
  private current: AbortController | null = null;

  constructor(
    private readonly backend: QemuBackend,
    private readonly log: (line: string) => void,
  ) {}

  /** A boot or restore ran `build`: its start-up code is compiled. */
  ran(build: string): void {
    this.done.set(build, Promise.resolve());
  }

  /** Warms `build` up unless it ran or is warming up; resolves when done. */
  once(build: string, req: () => WarmUpRequest): Promise<void> {
    let done = this.done.get(build);
    if (!done) {
      const controller = new AbortController();
      this.current = controller;
      done = warmUp(this.backend, req(), controller.signal).then((ms) => {
        if (this.current === controller) this.current = null;
        // One cut short is tried again before the next update.
        if (ms === null) this.done.delete(build);
        this.log(`[live-update] ${build} ${ms === null ? 'not warmed up' : `warmed up in ${ms} ms`}`);
      });
      this.done.set(build, done);
    }
    return done;
  }

  /** A pause began: the warm-up in progress must not take its CPU. */
  abort(): void {
    this.current?.abort();
  }
}
