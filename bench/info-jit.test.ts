// Runs in Node (vitest): reading the JIT's counts out of `info jit`.
import { describe, expect, it } from 'vitest';
import { parseInfoJit } from './info-jit';

// The tails of `info jit` from the i386 guest: a build with regions, and
// one from before them (one module per block).
const REGIONS = `TLB elided flushes  0

TCI JIT: on
blocks compiled     1843 (2519871 bytes of wasm) in 911 modules
modules alive       900
blocks interpreted  12 (cannot compile), 0 (refused by the host)
compile time        1203344 us (1320 us per module)
`;
const BEFORE_REGIONS = `TCI JIT: on
blocks compiled     2131 (1812533 bytes of wasm)
blocks alive        2131
blocks interpreted  20 (cannot compile), 0 (refused by the host)
`;

describe('parseInfoJit', () => {
  it('reads every count from a build with regions', () => {
    expect(parseInfoJit(REGIONS)).toEqual({ compiled: 1843, modules: 911, wasmBytes: 2519871, modulesAlive: 900, refused: 12, failed: 0, compileUs: 1203344 });
  });
  it('reads a build from before regions as one module per block, without a compile time', () => {
    expect(parseInfoJit(BEFORE_REGIONS)).toEqual({ compiled: 2131, modules: 2131, wasmBytes: 1812533, modulesAlive: 2131, refused: 20, failed: 0, compileUs: null });
  });
  it('is null when the interpreter runs alone', () => {
    expect(parseInfoJit('Translation buffer state:\n\nTCI JIT: off (interpreter only)\n')).toBeNull();
  });
  it('refuses text without the JIT lines (a build without the series)', () => {
    expect(() => parseInfoJit('Translation buffer state:\n')).toThrow(/no TCI JIT line/);
  });
});
