// Runs in Node (vitest): window.playground against the real host over a
// real Comlink channel (a MessageChannel stands in for the Worker), with
// a fake QEMU. Proves the protocol: calls, events and error codes.
import { expose } from 'comlink';
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeBackend, fakeFetch } from '../test/fakes/fake-qemu';
import { PlaygroundError, registerTransferHandlers } from '../worker/api';
import { QemuHost } from '../worker/host';
import { Playground } from './playground';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
  vi.restoreAllMocks();
});

/** A Playground whose "workers" are MessageChannels to fresh hosts. */
function connect(backend = new FakeBackend(), isolated = true): Playground & { workers: number } {
  registerTransferHandlers();
  const counter = { workers: 0 };
  const pg = new Playground({
    artifactsBase: 'http://test/artifacts/',
    isolated,
    createWorker: () => {
      counter.workers++;
      const { port1, port2 } = new MessageChannel();
      open.push(port1, port2);
      const host = new QemuHost({ backend, fetch: fakeFetch(), isolated: () => true });
      expose(host, port2 as unknown as Parameters<typeof expose>[1]);
      const worker = port1 as unknown as Worker & { terminate(): void };
      worker.terminate = () => {
        port1.close();
        port2.close();
      };
      return worker;
    },
  });
  return Object.defineProperty(pg, 'workers', { get: () => counter.workers }) as Playground & { workers: number };
}

describe('Playground over Comlink', () => {
  it('boots, talks to the serial console and the monitor', async () => {
    const pg = connect();
    const statuses: string[] = [];
    pg.onStatus((s) => statuses.push(s.state));
    const status = await pg.boot({ guest: 'arm' });
    expect(status.state).toBe('running');
    expect(pg.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1', ramMiB: 128 });
    expect(statuses).toContain('booting');
    const from = pg.serialOffset();
    await pg.sendSerial('echo $((6*7))\n');
    await expect(pg.waitForSerial(/^42$/m, 2000, { from })).resolves.toBe('42');
    await expect(pg.monitor('info status')).resolves.toBe('VM status: running');
    await expect(pg.waitForSerial('cpr-playground guest ready', 100)).resolves.toBeTruthy();
    expect(pg.serialText()).toContain('Booting Linux');
    expect((await pg.stop()).state).toBe('stopped');
  });

  it('gives every boot a fresh worker and ignores the old one', async () => {
    const backend = new FakeBackend();
    const pg = connect(backend);
    await pg.boot({ guest: 'arm' });
    const second = await pg.boot({ guest: 'i386' });
    expect(pg.workers).toBe(2);
    expect(second).toMatchObject({ state: 'running', build: 'qemu-system-i386@v1' });
    expect(pg.status()).toMatchObject({ state: 'running', guest: 'i386' });
    expect(backend.instances[0]!.killed).toBe(true);
  });

  it('carries error codes across the boundary as PlaygroundError', async () => {
    const pg = connect();
    const err = await pg.boot({ ramMiB: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlaygroundError);
    expect(err).toMatchObject({ code: 'bad-options', message: /invalid RAM size 100 MiB/ });
  });

  it('carries boot-timeout and puts it in the status', async () => {
    const pg = connect(new FakeBackend({ silent: true }));
    await expect(pg.boot({ bootTimeoutMs: 30 })).rejects.toMatchObject({ code: 'boot-timeout' });
    expect(pg.status()).toMatchObject({ state: 'error', error: { code: 'boot-timeout' } });
  });

  it('refuses on a page without isolation, before starting a worker', async () => {
    const pg = connect(new FakeBackend(), false);
    await expect(pg.boot()).rejects.toMatchObject({ code: 'not-isolated' });
    expect(pg.status().state).toBe('error');
  });
});

describe('snapshots over Comlink', () => {
  /** QEMU's stream as the fake saves it. */
  const QEVM = new Uint8Array([0x51, 0x45, 0x56, 0x4d]);

  it('restores over a running guest: a fresh worker checks the file, once, before the guest ends', async () => {
    const backend = new FakeBackend();
    const pg = connect(backend);
    await pg.boot({ guest: 'arm' });
    const file = await pg.saveSnapshot();
    const opened = vi.spyOn(QemuHost.prototype, 'openSnapshot');
    const checked = vi.spyOn(QemuHost.prototype, 'checkSnapshot');
    await expect(pg.restoreSnapshot(file, { build: 'v2' })).resolves.toMatchObject({ state: 'running', build: 'qemu-system-arm@v2' });
    expect(opened).toHaveBeenCalledTimes(1);
    expect(checked).not.toHaveBeenCalled();
    expect(pg.workers).toBe(2);
    expect(backend.instances[0]!.killed).toBe(true);
    expect(backend.instances[1]!.req.files['/snapshot.state']).toEqual(QEVM);
    expect(pg.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2' });
  });

  it('refuses a bad file in the fresh worker: the running guest, its worker and the caller\'s bytes stay', async () => {
    const backend = new FakeBackend();
    const pg = connect(backend);
    await pg.boot({ guest: 'arm' });
    const bytes = new Uint8Array(await (await pg.saveSnapshot()).arrayBuffer());
    bytes[bytes.length - 3]! ^= 0x40;
    const states: string[] = [];
    pg.onStatus((s) => states.push(s.state));
    await expect(pg.restoreSnapshot(bytes)).rejects.toMatchObject({ code: 'bad-snapshot', message: /sha256.*nothing was changed/ });
    expect(pg.workers).toBe(2);
    expect(backend.instances).toHaveLength(1);
    expect(backend.instances[0]!.killed).toBe(false);
    expect(states.filter((s) => s !== 'running')).toEqual([]);
    expect(pg.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1', error: null });
    await expect(pg.monitor('info status')).resolves.toBe('VM status: running');
    // Sent as a copy: the caller's bytes are not detached.
    expect(bytes.length).toBeGreaterThan(100);
  });

  it('restores in a worker that ran no QEMU yet, in that worker', async () => {
    const file = await (async () => {
      const saver = connect();
      await saver.boot({ guest: 'arm' });
      return saver.saveSnapshot();
    })();
    const backend = new FakeBackend();
    const pg = connect(backend);
    const opened = vi.spyOn(QemuHost.prototype, 'openSnapshot');
    await expect(pg.restoreSnapshot(file)).resolves.toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
    expect(opened).toHaveBeenCalledTimes(1);
    expect(pg.workers).toBe(1);
    expect(backend.instances).toHaveLength(1);
  });
});
