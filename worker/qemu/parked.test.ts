import { describe, expect, it } from 'vitest';
import { parkedAddresses, threadExited, wakeParked } from './parked';

// A fake thread list in a small shared Memory: struct pthread words at
// self (0), prev (2), next (3), wait_addr (29).
function threadAt(words: Uint32Array, t: number, prev: number, next: number, waitAddr: number): void {
  words[t / 4] = t;
  words[t / 4 + 2] = prev;
  words[t / 4 + 3] = next;
  words[t / 4 + 29] = waitAddr;
}

describe('parkedAddresses', () => {
  it('collects the words every thread of the list waits on; the runtime thread\'s own struct apart', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const words = new Uint32Array(memory.buffer);
    const main = 0x100;
    const a = 0x400;
    const b = 0x800;
    threadAt(words, main, b, a, 1); // notify bit only: not waiting
    threadAt(words, a, main, b, 0x2000);
    threadAt(words, b, a, main, 0x3005); // waiting, notify bit set
    const parked = parkedAddresses(memory, [a, b]);
    expect(parked.threads.sort((x, y) => x - y)).toEqual([a, b, 0x2000, 0x3004]);
    expect(parked.runtime).toEqual([main]);
  });

  it('ignores pointers that are not thread structs', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const words = new Uint32Array(memory.buffer);
    threadAt(words, 0x400, 0x10, 0xfffffff0, 0);
    expect(parkedAddresses(memory, [0x400, 0x401, 0x800])).toEqual({ threads: [0x400], runtime: [] });
  });
});

describe('wakeParked', () => {
  it('returns 0 when nothing waits', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    expect(wakeParked(memory, [0x100, 0x200])).toBe(0);
  });
});


describe('threadExited', () => {
  it('is true for a thread struct whose detach_state is DT_EXITED (0), false while joinable or not a thread', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const words = new Uint32Array(memory.buffer);
    threadAt(words, 0x400, 0x400, 0x400, 0);
    words[0x400 / 4 + 7] = 2; // DT_JOINABLE
    expect(threadExited(memory, 0x400)).toBe(false);
    words[0x400 / 4 + 7] = 0; // DT_EXITED
    expect(threadExited(memory, 0x400)).toBe(true);
    expect(threadExited(memory, 0x800)).toBe(false);
  });
});
