import { afterEach, describe, expect, it, vi } from 'vitest';
import { startInstance } from './instance-client';

/** An instance worker that never answers (seen in Firefox with a WebDriver
 * BiDi session open: its `new Worker()` does not return). */
class SilentWorker {
  static made: SilentWorker[] = [];
  terminated = false;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onerror: ((ev: ErrorEvent) => void) | null = null;
  constructor() {
    SilentWorker.made.push(this);
  }
  postMessage(): void {}
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
});
