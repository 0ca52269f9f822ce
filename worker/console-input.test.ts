// Runs in Node (vitest): input across a live update's pause
// (worker/console-input.ts): nothing lost, nothing reordered.
import { describe, expect, it } from 'vitest';
import { ConsoleInput } from './console-input';
import type { ConsoleName, QemuInstanceLike } from './backend';

const enc = new TextEncoder();
const dec = new TextDecoder();

function instance(name: string, log: string[]): QemuInstanceLike {
  return {
    write: (console: ConsoleName, bytes: Uint8Array) => log.push(`${name} ${console} ${dec.decode(bytes)}`),
    exited: new Promise(() => undefined),
    kill: async () => undefined,
  };
}

describe('ConsoleInput', () => {
  it('writes straight through while nothing is held', () => {
    const log: string[] = [];
    const input = new ConsoleInput(() => instance('old', log));
    input.write('serial', enc.encode('ls'));
    expect(log).toEqual(['old serial ls']);
    expect(input.holding).toBe(false);
  });

  it("gives the next instance the old one's unread input, then what came back, then what was held", () => {
    const log: string[] = [];
    let target = instance('old', log);
    const input = new ConsoleInput(() => target);
    input.hold({ serial: enc.encode('1'), files: enc.encode('2') });
    input.bounce('serial', enc.encode('3'));
    input.write('serial', enc.encode('4'));
    input.write('monitor', enc.encode('5'));
    expect(log).toEqual([]);
    target = instance('new', log);
    input.release();
    expect(log).toEqual(['new serial 1', 'new files 2', 'new serial 3', 'new serial 4', 'new monitor 5']);
    input.write('serial', enc.encode('6'));
    expect(log.at(-1)).toBe('new serial 6');
  });

  it('drops held input when no instance runs the VM any more', () => {
    const log: string[] = [];
    const input = new ConsoleInput(() => null);
    input.hold({});
    input.write('serial', enc.encode('x'));
    input.release();
    expect(log).toEqual([]);
    expect(input.holding).toBe(false);
  });
});
