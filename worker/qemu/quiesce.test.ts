// Runs in Node (vitest): an instance worker's runtime made quiet after its
// QEMU ended, against real Atomics on a shared buffer and real timers.
import { afterEach, describe, expect, it } from 'vitest';
import { trackAsyncWork, type TimerScope } from './quiesce';

type WaitAsync = (array: Int32Array, index: number, value: number, timeout?: number) => { async: boolean; value: unknown };
const atomics = Atomics as typeof Atomics & { waitAsync: WaitAsync };
const original = atomics.waitAsync;

afterEach(() => {
  atomics.waitAsync = original;
});

describe('trackAsyncWork', () => {
  it('wakes the pending waits once, lets their callbacks run first, then refuses new ones', async () => {
    const scope: TimerScope = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
    const work = trackAsyncWork(scope);
    const i32 = new Int32Array(new SharedArrayBuffer(16));
    const woken: string[] = [];
    const wait = atomics.waitAsync(i32, 1, 0);
    expect(wait.async).toBe(true);
    void (wait.value as Promise<string>).then((how) => woken.push(how));

    await work.quiesce();
    expect(woken).toEqual(['ok']);
    // Nothing waits there any more, and a new wait never registers.
    expect(Atomics.notify(i32, 1)).toBe(0);
    const later = atomics.waitAsync(i32, 1, 0);
    expect(later.async).toBe(true);
    expect(Atomics.notify(i32, 1)).toBe(0);
  });

  it('cancels the timers set before and ignores those set after', async () => {
    const scope: TimerScope = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
    const work = trackAsyncWork(scope);
    const fired: string[] = [];
    scope.setTimeout(() => fired.push('before'), 5);
    const cleared = scope.setTimeout(() => fired.push('cleared'), 5);
    scope.clearTimeout(cleared);
    scope.setTimeout(() => fired.push('ran'), 0);
    await new Promise((r) => globalThis.setTimeout(r, 1));
    await work.quiesce();
    scope.setTimeout(() => fired.push('after'), 0);
    await new Promise((r) => globalThis.setTimeout(r, 20));
    expect(fired).toEqual(['ran']);
  });
});
