// Runs in Node (vitest): QEMU's recent log and the errors it explains
// (worker/qemu-log.ts).
import { describe, expect, it } from 'vitest';
import { isCrash, QemuLog } from './qemu-log';

const session = (crashed: string | null = null) => ({ build: { name: 'qemu-system-arm@v1' }, crashed });

describe('QemuLog', () => {
  it('says its last lines, without blanks, the excepted one and our own diagnostics', () => {
    const log = new QemuLog();
    expect(log.said()).toBe('');
    for (const line of ['a', ' ', '[live-update] pause', 'b', 'c']) log.add(line);
    expect(log.said()).toBe('. QEMU said: a | b | c');
    expect(log.said('b')).toBe('. QEMU said: a | c');
    log.clear();
    expect(log.said()).toBe('');
  });

  it('keeps the last 40 lines and says the last 8', () => {
    const log = new QemuLog();
    for (let i = 0; i < 50; i++) log.add(`line ${i}`);
    expect(log.said()).toBe(`. QEMU said: ${Array.from({ length: 8 }, (_, i) => `line ${42 + i}`).join(' | ')}`);
  });

  it('tells an exit, a crash and a wasm that did not load apart', () => {
    const log = new QemuLog();
    log.add('qemu: could not open disk');
    expect(log.exitError(session(), { status: 1 })).toMatchObject({ code: 'qemu-exited', message: /exited with status 1\. QEMU said: qemu: could not open disk/ });
    expect(log.exitError(session('trap'), { status: 134 })).toMatchObject({ code: 'qemu-exited', message: /qemu-system-arm@v1 crashed: trap/ });
    log.add('CompileError: WebAssembly.instantiate(): bad magic');
    expect(log.exitError(session(), { status: 1 })).toMatchObject({ code: 'load-failed', message: /its wasm did not load.*npm run artifacts/ });
  });

  it('knows the glue\'s trap lines', () => {
    expect(isCrash('worker sent an error! undefined:1: Uncaught RuntimeError: unreachable')).toBe(true);
    expect(isCrash('qemu: terminating on signal 15')).toBe(false);
  });
});
