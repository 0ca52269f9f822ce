import { afterEach, describe, expect, it, vi } from 'vitest';
import { prewarmInstance, startInstance } from './instance-client';
import type { ToInstance } from './instance-protocol';

/** An instance worker that never answers (seen in Firefox with a WebDriver
 * BiDi session open: its `new Worker()` does not return). */
class SilentWorker extends EventTarget {
  static made: SilentWorker[] = [];
  terminated = false;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onerror: ((ev: ErrorEvent) => void) | null = null;
  constructor() {
    super();
    SilentWorker.made.push(this);
  }
  sent: ToInstance[] = [];
  postMessage(m: ToInstance): void {
    this.sent.push(m);
  }
  terminate(): void {
    this.terminated = true;
  }
}

describe('startInstance', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    SilentWorker.made = [];
  });

  it('fails a launch that the instance worker never answers, ends that worker, and says why', async () => {
    vi.stubGlobal('Worker', SilentWorker);
    const logs: string[] = [];
    const launch = startInstance({
      jsUrl: 'http://localhost/qemu-system-arm.js',
      wasmUrl: 'http://localhost/qemu-system-arm.wasm',
      argv: [],
      files: {},
      onConsole: () => undefined,
      onLog: (line) => logs.push(line),
      launchTimeoutMs: 20,
    });
    await expect(launch).rejects.toThrow(/did not start QEMU within 0\.02 s/);
    expect(SilentWorker.made).toHaveLength(1);
    expect(SilentWorker.made[0]!.terminated).toBe(true);
    expect(logs.join('\n')).toMatch(/did not start QEMU/);
  });

  it('a staged spare is ready once its worker says it is staged', async () => {
    vi.stubGlobal('Worker', SilentWorker);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const stage = { jsUrl: 'http://localhost/v2/qemu-system-arm.js', wasmUrl: 'http://localhost/v2/qemu-system-arm.wasm', memory, files: {} };
    const spare = prewarmInstance(stage.jsUrl, stage);
    let ready = false;
    void spare.ready.then(() => (ready = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(ready).toBe(false);
    SilentWorker.made[0]!.dispatchEvent(new MessageEvent('message', { data: { type: 'staged' } }));
    await new Promise((r) => setTimeout(r, 0));
    expect(ready).toBe(true);
    // Not asked to stage: ready at once.
    await prewarmInstance(stage.jsUrl).ready;
  });

  it('sends a staged worker only what the stage did not bring; a launch it cannot take goes to a new worker', () => {
    vi.stubGlobal('Worker', SilentWorker);
    const kernel = new Uint8Array(8);
    const state = new Uint8Array(4);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const stage = { jsUrl: 'http://localhost/v2/qemu-system-arm.js', wasmUrl: 'http://localhost/v2/qemu-system-arm.wasm', memory, files: { '/kernel': kernel } };
    const launch = { ...stage, argv: ['-S'], files: { '/kernel': kernel, '/vm.state': state }, onConsole: () => undefined, onLog: () => undefined, launchTimeoutMs: 20 };
    void startInstance(launch, prewarmInstance(stage.jsUrl, stage)).catch(() => undefined);
    const staged = SilentWorker.made[0]!;
    expect(staged.sent.map((m) => m.type)).toEqual(['stage', 'run']);
    expect(staged.sent[1]).toMatchObject({ type: 'run', argv: ['-S'], files: { '/vm.state': state } });
    expect(Object.keys((staged.sent[1] as { files: object }).files)).toEqual(['/vm.state']);

    // Staged for another Memory: disposed, and a new worker gets all of it.
    const other = prewarmInstance(stage.jsUrl, { ...stage, memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }) });
    void startInstance(launch, other).catch(() => undefined);
    expect(SilentWorker.made[1]!.terminated).toBe(true);
    expect(SilentWorker.made[2]!.sent.map((m) => m.type)).toEqual(['launch']);
  });
});
