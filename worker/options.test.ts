// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { ramError, resolveBootOptions, suggest } from './options';

describe('resolveBootOptions', () => {
  it('fills in the documented defaults', () => {
    expect(resolveBootOptions(undefined)).toEqual({
      guest: 'arm',
      ramMiB: 128,
      build: undefined,
      bootTimeoutMs: 300_000,
      extraArgs: [],
      from: 'scratch',
      accel: 'jit',
    });
  });

  it('rejects an unknown engine, with the one meant', () => {
    expect(() => resolveBootOptions({ accel: 'jti' })).toThrow(/accel must be "jit" or "interpreter", got "jti". Did you mean "jit"\?/);
    expect(resolveBootOptions({ accel: 'interpreter' }).accel).toBe('interpreter');
  });

  it('runs the 64-bit guest under the interpreter, and says why a JIT is refused', () => {
    expect(resolveBootOptions({ guest: 'x86_64' }).accel).toBe('interpreter');
    expect(() => resolveBootOptions({ guest: 'x86_64', accel: 'jit' })).toThrow(/x86_64 guest has no JIT yet .*accel: "interpreter"/);
    expect(resolveBootOptions({ guest: 'aarch64' }).accel).toBe('interpreter');
    expect(() => resolveBootOptions({ guest: 'aarch64', accel: 'jit' })).toThrow(/aarch64 guest has no JIT yet/);
    expect(resolveBootOptions({ guest: 'i386' }).accel).toBe('jit');
  });

  it.each([63, 100, 1040, 0, -16, 128.5])('rejects %s MiB of RAM with the valid range', (ramMiB) => {
    expect(() => resolveBootOptions({ ramMiB })).toThrow(/64 to 1024 MiB in steps of 16|whole number/);
  });

  it('accepts the RAM limits', () => {
    expect(ramError(64)).toBeNull();
    expect(ramError(1024)).toBeNull();
    expect(ramError('128')).toMatch(/whole number/);
  });

  it('names unknown options and suggests the right one', () => {
    expect(() => resolveBootOptions({ ram: 128 })).toThrow(/unknown boot option "ram". Did you mean "ramMiB"\?/);
    expect(() => resolveBootOptions({ guest: 'armm' })).toThrow(/Did you mean "arm"/);
  });

  it('carries the bad-options code', () => {
    try {
      resolveBootOptions({ guest: 'riscv' });
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('bad-options');
    }
  });

  it('checks extraArgs and timeouts', () => {
    expect(() => resolveBootOptions({ extraArgs: '-S' })).toThrow(/array of strings/);
    expect(() => resolveBootOptions({ bootTimeoutMs: 0 })).toThrow(/positive/);
    expect(resolveBootOptions({ extraArgs: ['-S'], bootTimeoutMs: 5 }).extraArgs).toEqual(['-S']);
    expect(resolveBootOptions({ from: 'snapshot' }).from).toBe('snapshot');
    expect(() => resolveBootOptions({ from: 'disk' })).toThrow(/from must be "snapshot" or "scratch"/);
    expect(() => resolveBootOptions({ from: 'snapshot', ramMiB: 256 })).toThrow(/booted snapshot has 128 MiB of RAM, not 256/);
    expect(() => resolveBootOptions({ from: 'snapshot', extraArgs: ['-S'] })).toThrow(/without extraArgs/);
  });
});

describe('suggest', () => {
  it('only suggests close names', () => {
    expect(suggest('buidl', ['build', 'guest'])).toBe('build');
    expect(suggest('xyzzy', ['build', 'guest'])).toBeUndefined();
  });
});
