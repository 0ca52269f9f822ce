// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { HmpLines, plainText, typedHint } from './hmp-lines';

const enc = new TextEncoder();

describe('HmpLines', () => {
  it('reports each accepted command line, across chunks, with line editing applied', () => {
    const lines: string[] = [];
    const hmp = new HmpLines((l) => lines.push(l));
    for (const piece of ["QEMU 10.2.2 monitor - type 'help' for more information\r\n(qe", 'mu) info st', 'x\x08\x1b[K', 'atus\r\nVM status: running\r\n(qemu) ', 'stop\r\n(qemu) ']) {
      hmp.feed(enc.encode(piece));
    }
    expect(lines).toEqual(['info status', 'stop']);
  });
});

describe('typedHint', () => {
  it('names the target of a typed cpr-exec-command (or the proposal\'s cpr-exec-args)', () => {
    expect(typedHint("migrate_set_parameter cpr-exec-command qemu-system-arm@v2 -M virt -incoming file:vm.state")).toEqual({ kind: 'exec-target', name: 'qemu-system-arm@v2' });
    expect(typedHint("migrate_set_parameter cpr-exec-args 'qemu-system-arm@v2' -M virt")).toEqual({ kind: 'exec-target', name: 'qemu-system-arm@v2' });
    expect(typedHint('migrate -d file:vm.state')).toEqual({ kind: 'migrate' });
    expect(typedHint('migrate_set_parameter mode cpr-exec')).toEqual({ kind: 'none' });
  });
});

describe('plainText', () => {
  it('drops escapes and applies backspaces', () => {
    expect(plainText('in\x1b[Kfo\x08\x08fo status\r\n')).toBe('info status\n');
  });
});
