// Runs in Node (vitest): reading a save's and a restore's phases.
import { describe, expect, it } from 'vitest';
import { migrationMs, restorePhases, type Mark } from './snapshot-phases';

describe('restorePhases', () => {
  // The order seen in Chromium (256 MiB i386 guest), ms after the call.
  const seen: Mark[] = [
    ['status:stopping', 9271],
    ['status:stopped', 10328],
    ['status:idle', 10713],
    ['status:loading', 17447],
    ['progress:manifest', 17447],
    ['status:loading', 17701],
    ['progress:download', 17739],
    ['status:starting', 19200],
    ['progress:instantiate', 19200],
    ['progress:boot', 22195],
    ['status:running', 28116],
    ['progress:done', 28211],
  ];

  it('splits the restore at the first of each start, in order', () => {
    expect(restorePhases(seen, 28110)).toEqual({ checkMs: 9271, stopMs: 1442, recheckMs: 6734, buildMs: 1753, qemuStartMs: 2995, stateLoadMs: 5915 });
  });

  it('takes the check to idle when the running guest ends in the background (no stopping)', () => {
    const retired = seen.filter(([n]) => n !== 'status:stopping' && n !== 'status:stopped');
    expect(restorePhases(retired, 28110)).toEqual({ checkMs: 10713, stopMs: null, recheckMs: 6734, buildMs: 1753, qemuStartMs: 2995, stateLoadMs: 5915 });
  });

  it('is null when a phase never started', () => {
    expect(restorePhases(seen.filter(([n]) => n !== 'status:starting'), 28110)).toBeNull();
  });

  it('does not take a start from before the phase before it', () => {
    expect(restorePhases([['status:idle', 5], ...seen.filter(([n]) => n !== 'status:idle')], 28110)).toBeNull();
  });
});

describe('migrationMs', () => {
  it("reads QEMU 10's Time line", () => {
    expect(migrationMs('Status: \t\tcompleted\nTime (ms): \t\ttotal=12771, setup=20, down=699\nRAM info:\n')).toBe(12771);
  });
  it('reads the older "total time" line', () => {
    expect(migrationMs('Migration status: completed\ntotal time: 842 ms\n')).toBe(842);
  });
  it('is null without a total', () => {
    expect(migrationMs('Status: \t\tcompleted\n')).toBeNull();
  });
});
