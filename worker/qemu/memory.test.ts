// Runs in Node (vitest): the memory layout and its region table.
import { describe, expect, it } from 'vitest';
import {
  buildLayoutProblem,
  clearBelow,
  createSharedMemory,
  HEADER_BYTES,
  HEAP_LIMIT,
  headerBase,
  layoutProblem,
  MEMORY_BYTES,
  REGION_ALIGN,
  RegionTable,
  SLOT_SPLIT,
  buildStaticBase,
  slotStart,
} from './memory';

const memory = createSharedMemory();

describe('the shared Memory layout', () => {
  it('has a valid header at the top', () => {
    expect(memory.buffer.byteLength).toBe(MEMORY_BYTES);
    expect(layoutProblem(memory)).toBeUndefined();
    expect(headerBase(memory)).toBe(MEMORY_BYTES - HEADER_BYTES);
    expect(new RegionTable(memory).heapLimit).toBe(HEAP_LIMIT);
  });

  it('refuses a Memory without the header', () => {
    const other = new WebAssembly.Memory({ initial: MEMORY_BYTES / 65536, maximum: MEMORY_BYTES / 65536, shared: true });
    expect(layoutProblem(other)).toMatch(/no cpr-memory-layout\/2 header/);
    expect(() => new RegionTable(other)).toThrow(/header/);
  });

  it('knows which builds speak the layout', () => {
    expect(buildLayoutProblem('a', 'var CPR_LAYOUT_TAG="cpr-memory-layout/2";')).toBeUndefined();
    expect(buildLayoutProblem('a', '"cpr-memory-layout/1"')).toMatch(/speaks memory layout "cpr-memory-layout\/1"/);
    expect(buildLayoutProblem('a', 'var x=1')).toMatch(/no live-update support/);
  });
});

describe('RegionTable', () => {
  it('allocates aligned regions downwards from the header, and reuses freed ones', () => {
    const t = new RegionTable(memory);
    const a = t.add('ram0');
    expect(t.reserve(a, 128 * 1024 ** 2)).toBe(true);
    const ea = t.entry(a);
    expect(ea).toMatchObject({ name: 'ram0', inUse: true, cap: 128 * 1024 ** 2 });
    expect(ea.base % REGION_ALIGN).toBe(0);
    expect(ea.base + ea.cap).toBeLessThanOrEqual(headerBase(memory));
    const b = t.add('/rom@etc/acpi/tables');
    expect(t.reserve(b, 1000)).toBe(true);
    expect(t.entry(b).cap).toBe(REGION_ALIGN);
    expect(t.entry(b).base).toBe(ea.base - REGION_ALIGN);
    // A file that grows moves (while unmapped) and keeps its bytes.
    new Uint8Array(memory.buffer)[t.entry(b).base] = 42;
    t.setSize(b, 1);
    expect(t.reserve(b, 3 * REGION_ALIGN)).toBe(true);
    expect(new Uint8Array(memory.buffer)[t.entry(b).base]).toBe(42);
    // Freed regions are handed out again, zeroed.
    const base = t.entry(b).base;
    t.release(b);
    const c = t.add('again');
    expect(t.reserve(c, 2 * REGION_ALIGN)).toBe(true);
    expect(t.entry(c).base).toBe(base);
    expect(new Uint8Array(memory.buffer)[base]).toBe(0);
  });

  it('never reaches below the heap limit', () => {
    const t = new RegionTable(memory);
    const big = t.add('too-big');
    expect(t.reserve(big, MEMORY_BYTES - HEAP_LIMIT)).toBe(false);
    expect(t.regionsBottom).toBeGreaterThanOrEqual(HEAP_LIMIT);
  });
});

describe('clearBelow', () => {
  it('zeroes up to the old heap top and never above the heap limit', () => {
    const u8 = new Uint8Array(memory.buffer);
    u8[100] = 1;
    u8[HEAP_LIMIT + 5] = 7;
    expect(clearBelow(memory, 4096)).toBe(4096);
    expect(u8[100]).toBe(0);
    expect(clearBelow(memory, MEMORY_BYTES)).toBe(HEAP_LIMIT);
    expect(u8[HEAP_LIMIT + 5]).toBe(7);
    // Clearing 512 MiB takes seconds on a loaded 2-core machine.
  }, 60_000);

  it('above the dirty top, zeroes the words that are not zero and leaves the rest to the heap limit', () => {
    const u8 = new Uint8Array(memory.buffer);
    const dirtyTop = 64 * 1024 + 100;
    for (const at of [10, dirtyTop - 1, dirtyTop + 3, 200 * 1024 + 4095, 300 * 1024]) u8[at] = 9;
    u8[300 * 1024 + 8] = 9;
    expect(clearBelow(memory, 300 * 1024 + 4, dirtyTop)).toBe(300 * 1024 + 4);
    for (const at of [10, dirtyTop - 1, dirtyTop + 3, 200 * 1024 + 4095, 300 * 1024]) expect(u8[at]).toBe(0);
    // Beyond `top`: not this clear's business.
    expect(u8[300 * 1024 + 8]).toBe(9);
    u8[300 * 1024 + 8] = 0;
  });
});

describe('slots', () => {
  it('puts a build linked at the split in the upper slot, any other in the lower', () => {
    expect(slotStart(1024)).toBe(0);
    expect(slotStart(SLOT_SPLIT)).toBe(SLOT_SPLIT);
    expect(SLOT_SPLIT).toBeLessThan(HEAP_LIMIT);
    expect(new Uint32Array(memory.buffer, headerBase(memory), 8)[5]).toBe(SLOT_SPLIT);
  });

  it('reads the static base from a glue', () => {
    expect(buildStaticBase('var CPR_LAYOUT_TAG = "x";\nvar CPR_STATIC_BASE = 268435456;')).toBe(268435456);
    expect(buildStaticBase('var x=1')).toBeUndefined();
  });

  it('clears one slot and leaves the other alone', () => {
    const u8 = new Uint8Array(memory.buffer);
    u8[4096] = 3;
    u8[SLOT_SPLIT + 4096] = 4;
    u8[SLOT_SPLIT + 2 * 1024 ** 2] = 5;
    clearBelow(memory, SLOT_SPLIT + 4 * 1024 ** 2, SLOT_SPLIT + 1024 ** 2, SLOT_SPLIT);
    expect(u8[4096]).toBe(3);
    expect(u8[SLOT_SPLIT + 4096]).toBe(0);
    expect(u8[SLOT_SPLIT + 2 * 1024 ** 2]).toBe(0);
    u8[4096] = 0;
  });
});
