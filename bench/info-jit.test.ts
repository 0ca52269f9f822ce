// Runs in Node (vitest): reading the JIT's counts out of `info jit`.
import { describe, expect, it } from 'vitest';
import { parseInfoJit } from './info-jit';

// The tail of `info jit` from the i386 guest after the jit e2e battery.
const ON = `TLB elided flushes  0

TCI JIT: on
blocks compiled     1843 (2519871 bytes of wasm)
blocks alive        1790
blocks interpreted  12 (cannot compile), 0 (refused by the host)
`;

describe('parseInfoJit', () => {
  it('reads every count when the JIT is on', () => {
    expect(parseInfoJit(ON)).toEqual({ compiled: 1843, wasmBytes: 2519871, alive: 1790, refused: 12, failed: 0 });
  });
  it('is null when the interpreter runs alone', () => {
    expect(parseInfoJit('Translation buffer state:\n\nTCI JIT: off (interpreter only)\n')).toBeNull();
  });
  it('refuses text without the JIT lines (a build without the series)', () => {
    expect(() => parseInfoJit('Translation buffer state:\n')).toThrow(/no TCI JIT line/);
  });
});
