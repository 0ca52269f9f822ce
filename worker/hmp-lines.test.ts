// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { HmpLines, typedHint } from './hmp-lines';

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

  it('reads a line as QEMU\'s editor draws it: after each byte, back over the input, all of it again, erase to the end', () => {
    // readline_update(): one ESC [ D per character of the old input, the
    // whole input, ESC [ K; a byte at a time, as QEMU reads the chardev.
    const typed = 'migrate_set_parameter cpr-exec-command qemu-system-arm@v2 -M virt -append \'console=ttyAMA0 lpj=100000\'';
    let echo = '(qemu) ';
    for (let i = 1; i <= typed.length; i++) echo += '\x1b[D'.repeat(i - 1) + typed.slice(0, i) + '\x1b[K';
    echo += '\r\n(qemu) ';
    const lines: string[] = [];
    const hmp = new HmpLines((l) => lines.push(l));
    // Split anywhere, escapes too.
    const bytes = enc.encode(echo);
    for (let i = 0; i < bytes.length; i += 7) hmp.feed(bytes.subarray(i, i + 7));
    expect(lines).toEqual([typed]);
    expect(typedHint(lines[0]!)).toEqual({ kind: 'exec-target', name: 'qemu-system-arm@v2' });
  });

  it('applies a cursor move with a count, and an edit in the middle of the line', () => {
    const lines: string[] = [];
    const hmp = new HmpLines((l) => lines.push(l));
    // "migrte" typed, cursor moved back 2, "a" inserted: the editor redraws from the start.
    hmp.feed(enc.encode('(qemu) migrte\x1b[2D\x1b[4Dmigrate\x1b[K\x1b[2D\r\n'));
    expect(lines).toEqual(['migrate']);
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

describe('HmpLines line editing', () => {
  it('drops escapes and applies backspaces', () => {
    const lines: string[] = [];
    new HmpLines((l) => lines.push(l)).feed(enc.encode('(qemu) in\x1b[Kfo\x08\x08fo status\r\n'));
    expect(lines).toEqual(['info status']);
  });
});
