// Runs in Node (vitest): the pure parts of the live-update flow.
import { describe, expect, it } from 'vitest';
import { GREETING } from '../test/fakes/fake-qemu';
import type { QemuInstanceLike } from './backend';
import { absolute, cprExecCommand, execName, parseEnv, waitRunning, wallClock, type Running } from './live-update';
import { QmpClient } from './qmp';

describe('live update helpers', () => {
  it('builds cpr-exec-command as QMP takes it: a list, no quoting', () => {
    expect(cprExecCommand('qemu-system-arm@v2', ['-m', '128', '-append', "console=ttyAMA0 it's"])).toEqual(
      ['qemu-system-arm@v2', '-m', '128', '-append', "console=ttyAMA0 it's", '-incoming', 'file:/vm.state'],
    );
  });

  it('parses QEMU environ and build names', () => {
    expect(parseEnv(['QEMU_CPR_EXEC_STATE=21', 'A=b=c', 'junk'])).toEqual({ QEMU_CPR_EXEC_STATE: '21', A: 'b=c' });
    expect(execName('/usr/bin/qemu-system-arm@v2')).toBe('qemu-system-arm@v2');
    expect(absolute('vm.state')).toBe('/vm.state');
  });
});

describe('waitRunning', () => {
  const enc = new TextEncoder();

  /** A started QEMU whose QMP answers what `answer` says, command by command. */
  function started(answer: (command: string, qmp: QmpClient) => void): Running {
    const dec = new TextDecoder();
    const qmp: QmpClient = new QmpClient((b) => {
      for (const line of dec.decode(b).split('\n').filter(Boolean)) {
        const { execute } = JSON.parse(line) as { execute: string };
        queueMicrotask(() => answer(execute, qmp));
      }
    }, () => 5000);
    const instance: QemuInstanceLike = {
      write: () => undefined,
      exited: new Promise(() => undefined),
      kill: async () => undefined,
    };
    queueMicrotask(() => qmp.feed(enc.encode(GREETING)));
    return { instance, qmp };
  }
  const reply = (qmp: QmpClient, obj: unknown): void => qmp.feed(enc.encode(`${JSON.stringify(obj)}\r\n`));

  it('ends the pause at QEMU\'s RESUME when it came before query-status was answered', async () => {
    let id = 0;
    const r = started((command, qmp) => {
      if (command === 'query-status') reply(qmp, { event: 'RESUME', timestamp: { seconds: 4, microseconds: 250000 } });
      reply(qmp, { return: command === 'query-status' ? { status: 'running', running: true } : {}, id: id++ });
    });
    expect(await waitRunning(r, 1000, 'qemu-system-arm@v2')).toEqual({ monitorAt: 5000, runningAt: 4250 });
  });

  it('falls back to when the answer came if the RESUME was not seen', async () => {
    let id = 0;
    const r = started((command, qmp) => reply(qmp, { return: command === 'query-status' ? { status: 'running', running: true } : {}, id: id++ }));
    const before = wallClock();
    const t = await waitRunning(r, 1000, 'qemu-system-arm@v2');
    expect(t.monitorAt).toBe(5000);
    expect(t.runningAt).toBeGreaterThanOrEqual(before);
  });
});
