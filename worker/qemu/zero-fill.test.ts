// Runs in Node (vitest): zeroFill on shared and unshared Memories.
import { describe, expect, it } from 'vitest';
import { firstNonZero, zeroFill } from './zero-fill';

function filled(shared: boolean): { memory: WebAssembly.Memory; bytes: Uint8Array } {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 4, shared });
  const bytes = new Uint8Array(memory.buffer);
  bytes.fill(0xa5);
  return { memory, bytes };
}

describe('zeroFill', () => {
  for (const shared of [true, false]) {
    it(`zeroes exactly the range asked, at any alignment (${shared ? 'shared' : 'unshared'} Memory)`, () => {
      const { memory, bytes } = filled(shared);
      zeroFill(memory, 13, 70_001);
      expect(bytes[12]).toBe(0xa5);
      expect(bytes.subarray(13, 13 + 70_001).every((b) => b === 0)).toBe(true);
      expect(bytes[13 + 70_001]).toBe(0xa5);
      zeroFill(memory, 5, 2);
      expect([...bytes.subarray(4, 8)]).toEqual([0xa5, 0, 0, 0xa5]);
      zeroFill(memory, 80_000, 0);
      expect(bytes[80_000]).toBe(0xa5);
    });
  }

  for (const shared of [true, false]) {
    it(`firstNonZero finds the first 8-byte word that is not zero (${shared ? 'shared' : 'unshared'} Memory)`, () => {
      const memory = new WebAssembly.Memory({ initial: 2, maximum: 4, shared });
      const bytes = new Uint8Array(memory.buffer);
      expect(firstNonZero(memory, 0, 65_536)).toBe(65_536);
      bytes[70_001] = 1; // in the word at 70_000
      bytes[131_071] = 1; // the last byte of the Memory
      expect(firstNonZero(memory, 0, 131_072)).toBe(70_000);
      expect(firstNonZero(memory, 70_000, 131_072)).toBe(70_000);
      expect(firstNonZero(memory, 70_008, 131_072)).toBe(131_064);
      expect(firstNonZero(memory, 0, 70_000)).toBe(70_000);
      expect(firstNonZero(memory, 80, 80)).toBe(80);
      expect(() => firstNonZero(memory, 4, 16)).toThrow(RangeError);
    });
  }
});
