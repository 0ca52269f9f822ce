// Runs in Node (vitest): the tour's sentence about the last pause.
import { describe, expect, it } from 'vitest';
import type { LiveUpdateResult } from '../worker/api';
import { pauseSentence } from './tour';

const result = (qemuInitMs: number, stateLoadMs: number): LiveUpdateResult => ({
  pauseMs: 210,
  from: 'qemu-system-arm@v1',
  to: 'qemu-system-arm@v2',
  route: 'cpr-exec',
  startedEarly: false,
  phases: { stateSaveMs: 20, teardownMs: 30, clearMs: 20, instantiateMs: 40, qemuInitMs, stateLoadMs },
});

describe('pauseSentence', () => {
  it('names each phase', () => {
    expect(pauseSentence(result(70, 30))).toBe('qemu-system-arm@v1 → qemu-system-arm@v2: the guest paused 210 ms (state save 20, teardown 30, clear 20, instantiate 40, QEMU init 70, state load 30 ms).');
  });

  it('says the load was inside QEMU init when the VM ran before the host could tell them apart', () => {
    expect(pauseSentence(result(100, 0))).toContain('instantiate 40, QEMU init and state load 100 ms).');
  });

  it('leaves out what was not in the pause when the new QEMU started early', () => {
    const r = { ...result(60, 10), startedEarly: true, phases: { stateSaveMs: 20, teardownMs: 0, clearMs: 0, instantiateMs: 0, qemuInitMs: 60, stateLoadMs: 10 } };
    expect(pauseSentence(r)).toBe('qemu-system-arm@v1 → qemu-system-arm@v2: the guest paused 210 ms (state save 20, QEMU init 60, state load 10 ms; qemu-system-arm@v2 had started before the VM stopped).');
  });

  it('says nothing before an update', () => {
    expect(pauseSentence(undefined)).toBe('');
  });
});
