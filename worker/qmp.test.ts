// Runs in Node (vitest): the QMP client's protocol, against QEMU's wire
// format (greeting, capabilities, ids, errors, events).
import { describe, expect, it } from 'vitest';
import { GREETING } from '../test/fakes/fake-qemu';
import { QmpClient, QmpError } from './qmp';

const enc = new TextEncoder();

function client(): { qmp: QmpClient; sent: () => Record<string, unknown>[]; reply(obj: unknown): void } {
  const lines: string[] = [];
  const dec = new TextDecoder();
  const qmp = new QmpClient((b) => lines.push(...dec.decode(b).split('\n').filter(Boolean)), () => 1000);
  return { qmp, sent: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), reply: (obj) => qmp.feed(enc.encode(`${JSON.stringify(obj)}\r\n`)) };
}

/** Capabilities asked once and answered: the queued query-status goes
 * out, and its answer resolves it. */
async function negotiatedThenStatus(c: ReturnType<typeof client>, status: Promise<unknown>): Promise<void> {
  expect(c.sent()).toEqual([{ execute: 'qmp_capabilities', id: 0 }]);
  c.reply({ return: {}, id: 0 });
  expect(await c.qmp.ready).toBe(1000);
  expect(c.sent()[1]).toEqual({ execute: 'query-status', id: 1 });
  c.reply({ return: { status: 'running', running: true }, id: 1 });
  expect(await status).toEqual({ status: 'running', running: true });
}

describe('QmpClient', () => {
  it('negotiates after the greeting and only then sends queued commands', async () => {
    const { qmp, sent, reply } = client();
    const status = qmp.status();
    expect(sent()).toEqual([]);
    qmp.feed(enc.encode(GREETING.slice(0, 20)));
    qmp.feed(enc.encode(GREETING.slice(20)));
    await negotiatedThenStatus({ qmp, sent, reply }, status);
  });

  it('matches replies by id and turns errors into QmpError with QEMU\'s words', async () => {
    const { qmp, reply } = client();
    qmp.feed(enc.encode(GREETING));
    reply({ return: {}, id: 0 });
    const a = qmp.execute('migrate', { uri: 'file:/vm.state' });
    const b = qmp.execute('query-name');
    reply({ return: { name: 'x' }, id: 2 });
    reply({ error: { class: 'GenericError', desc: 'Memory region pc.ram is not compatible with CPR.' }, id: 1 });
    await expect(b).resolves.toEqual({ name: 'x' });
    const err = await a.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ command: 'migrate', errorClass: 'GenericError', message: 'Memory region pc.ram is not compatible with CPR.' });
  });

  it('delivers events with QEMU\'s timestamp, and waits for one', async () => {
    const { qmp, reply } = client();
    const seen: string[] = [];
    qmp.onEvent((e) => seen.push(e.kind === 'migration' ? `migration:${e.status}` : e.kind));
    const resumed = qmp.waitFor((e) => (e.kind === 'resume' ? e.at : undefined), 1000, 'the VM did not run');
    reply({ event: 'STOP', timestamp: { seconds: 10, microseconds: 500 } });
    reply({ event: 'MIGRATION', data: { status: 'completed' }, timestamp: { seconds: 11, microseconds: 0 } });
    reply({ event: 'RESUME', timestamp: { seconds: 12, microseconds: 250000 } });
    reply({ event: 'NIC_RX_FILTER_CHANGED', data: {}, timestamp: { seconds: 13, microseconds: 0 } });
    expect(await resumed.promise).toBe(12250);
    expect(seen).toEqual(['stop', 'migration:completed', 'resume', 'other']);
  });

  it('times out a command and a wait, and fails both when QEMU goes', async () => {
    const { qmp, reply } = client();
    qmp.feed(enc.encode(GREETING));
    reply({ return: {}, id: 0 });
    await expect(qmp.execute('query-status', undefined, 10)).rejects.toMatchObject({ code: 'monitor-timeout', message: /query-status/ });
    await expect(qmp.waitFor(() => undefined, 10, 'nothing came').promise).rejects.toMatchObject({ code: 'timeout', message: /nothing came within 10 ms/ });
    const inFlight = qmp.execute('query-status');
    const wait = qmp.waitFor(() => undefined, 10_000, 'never');
    qmp.close(new Error('QEMU exited'));
    await expect(inFlight).rejects.toThrow('QEMU exited');
    await expect(wait.promise).rejects.toThrow('QEMU exited');
    await expect(qmp.execute('query-status')).rejects.toThrow('QEMU exited');
  });

  it('ignores lines that are not JSON and replies nobody waits for', () => {
    const { qmp, reply } = client();
    qmp.feed(enc.encode('garbage\r\n'));
    reply({ return: {}, id: 99 });
    expect(qmp.isClosed).toBe(false);
  });
});

describe('QmpClient.negotiate', () => {
  it('asks for command mode before the greeting, once', async () => {
    const { qmp, sent, reply } = client();
    qmp.negotiate();
    qmp.negotiate();
    expect(sent()).toEqual([{ execute: 'qmp_capabilities', id: 0 }]);
    const status = qmp.status();
    qmp.feed(enc.encode(GREETING));
    await negotiatedThenStatus({ qmp, sent, reply }, status);
  });
});
