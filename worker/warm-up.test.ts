// Runs in Node (vitest): the warm-up start (worker/warm-up.ts) against the
// fake backend: what it starts, that it always ends it, and that it never
// rejects. That it makes the first update's start faster is measured with
// the real QEMU in Chromium (docs/live-update.md).
import { describe, expect, it } from 'vitest';
import { FakeBackend } from '../test/fakes/fake-qemu';
import { warmUp, WarmUps } from './warm-up';

const request = {
  jsUrl: 'http://test/qemu-system-arm.js',
  wasmUrl: 'http://test/qemu-system-arm.wasm',
  module: {} as WebAssembly.Module,
  argv: ['-M', 'virt', '-m', '128'],
  files: { '/guest/kernel': new Uint8Array([1]) },
  env: { QEMU_TCI_JIT: 'on' },
};

describe('warmUp', () => {
  it('starts the build with the VM stopped on a Memory of its own, and ends it once QEMU answers', async () => {
    const backend = new FakeBackend();
    const ms = await warmUp(backend, request);
    expect(ms).toBeTypeOf('number');
    const [q] = backend.instances;
    expect(q!.req.argv).toEqual([...request.argv, '-S']);
    expect(q!.req.memory).toBeInstanceOf(WebAssembly.Memory);
    expect(q!.req.wasmModule).toBe(request.module);
    expect(q!.killed).toBe(true);
  });

  it('gives up without rejecting when QEMU exits, hangs, or the pause begins', async () => {
    expect(await warmUp(new FakeBackend({ exitStatus: 1 }), request)).toBeNull();
    const hanging = new FakeBackend({ incomingHangs: true, hangLaunch: false, silent: true });
    const controller = new AbortController();
    const warming = warmUp(hanging, { ...request, argv: [...request.argv, '-incoming', 'defer'] }, controller.signal);
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    expect(await warming).toBeNull();
    expect(hanging.instances[0]!.killed).toBe(true);
    expect(await warmUp(new FakeBackend({ launchError: 'no wasm' }), request)).toBeNull();
  });

  it('warms each build once, not a booted one, and again after one cut short', async () => {
    const backend = new FakeBackend();
    const lines: string[] = [];
    const ups = new WarmUps(backend, (l) => lines.push(l));
    ups.ran('qemu-system-arm@v1');
    await ups.once('qemu-system-arm@v1', () => request);
    expect(backend.instances).toHaveLength(0);
    await Promise.all([ups.once('qemu-system-arm@v2', () => request), ups.once('qemu-system-arm@v2', () => request)]);
    await ups.once('qemu-system-arm@v2', () => request);
    expect(backend.instances).toHaveLength(1);
    const cut = ups.once('qemu-system-i386@v2', () => ({ ...request, argv: [...request.argv, '-incoming', 'defer'] }));
    ups.abort();
    await cut;
    expect(lines.at(-1)).toBe('[live-update] qemu-system-i386@v2 not warmed up');
    await ups.once('qemu-system-i386@v2', () => request);
    expect(backend.instances).toHaveLength(3);
  });
});
