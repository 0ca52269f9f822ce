// Runs in Node (vitest): the tour's sentence about the last pause.
import { describe, expect, it } from 'vitest';
import type { LiveUpdateResult } from '../worker/api';
import { pauseSentence } from './tour';

const result = (qemuInitMs: number, stateLoadMs: number): LiveUpdateResult => ({
  pauseMs: 210,
  from: 'qemu-system-arm@v1',
  to: 'qemu-system-arm@v2',
  route: 'cpr-exec',
  phases: { stateSaveMs: 20, teardownMs: 30, clearMs: 20, instantiateMs: 40, qemuInitMs, stateLoadMs },
});

describe('pauseSentence', () => {
  it('names each phase', () => {
    expect(pauseSentence(result(70, 30))).toBe('qemu-system-arm@v1 → qemu-system-arm@v2: the guest paused 210 ms (state save 20, teardown 30, clear 20, instantiate 40, QEMU init 70, state load 30 ms).');
  });

  it('says the load was inside QEMU init when the VM ran before the host could tell them apart', () => {
    expect(pauseSentence(result(100, 0))).toContain('instantiate 40, QEMU init and state load 100 ms).');
  });

  it('says nothing before an update', () => {
    expect(pauseSentence(undefined)).toBe('');
  });
});
