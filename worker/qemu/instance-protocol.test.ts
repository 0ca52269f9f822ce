// Runs in Node (vitest): an instance worker's name says what to prewarm.
import { describe, expect, it } from 'vitest';
import { parsePrewarmName, prewarmName } from './instance-protocol';

describe('prewarm names', () => {
  it('carry the glue URL and the thread count', () => {
    const jsUrl = 'http://127.0.0.1:5173/artifacts/qemu/v2/qemu-system-arm.js';
    expect(parsePrewarmName(prewarmName(jsUrl, 4))).toEqual({ jsUrl, threads: 4 });
  });

  it('a worker not started ahead has none', () => {
    expect(parsePrewarmName('qemu-instance')).toBeNull();
  });
});
