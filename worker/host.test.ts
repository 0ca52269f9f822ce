// Runs in Node (vitest): the host's lifecycle against a fake QEMU.
import { describe, expect, it } from 'vitest';
import { FakeBackend, fakeFetch } from '../test/fakes/fake-qemu';
import type { Progress, Status } from './api';
import { QemuHost } from './host';

const BASE = 'http://test/artifacts/';

function makeHost(opts: { backend?: FakeBackend; fetch?: ReturnType<typeof fakeFetch>; isolated?: boolean } = {}) {
  const backend = opts.backend ?? new FakeBackend();
  const host = new QemuHost({
    backend,
    fetch: opts.fetch ?? fakeFetch(),
    isolated: () => opts.isolated ?? true,
  });
  const states: Status['state'][] = [];
  const progress: Progress[] = [];
  let serial = '';
  const dec = new TextDecoder();
  void host.init(
    { artifactsBase: BASE },
    {
      serial: (b) => (serial += dec.decode(b)),
      monitor: () => undefined,
      status: (s) => states.push(s.state),
      progress: (p) => progress.push(p),
      log: () => undefined,
      liveUpdate: () => undefined,
    },
  );
  return { host, backend, states, progress, serial: () => serial };
}

describe('QemuHost.boot', () => {
  it('loads, starts and boots to running, reporting status and progress', async () => {
    const { host, backend, states, progress, serial } = makeHost();
    const status = await host.boot({ guest: 'arm', ramMiB: 256 });
    expect(status).toMatchObject({ state: 'running', guest: 'arm', build: 'qemu-system-arm@v1', ramMiB: 256, error: null });
    expect(status.argv[0]).toBe('qemu-system-arm');
    expect(status.argv).toContain('256');
    expect(states).toEqual(['idle', 'loading', 'loading', 'starting', 'booting', 'running']);
    expect(progress.map((p) => p.phase)).toContain('download');
    const last = progress.filter((p) => p.phase === 'download').at(-1)!;
    expect(last.loaded).toBe(12);
    expect(last.total).toBe(12);
    expect(backend.instances[0]!.req.files['/guest/kernel']).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 20));
    expect(serial()).toContain('cpr-playground guest ready');
  });

  it('runs monitor commands and tracks pause and resume', async () => {
    const { host } = makeHost();
    await host.boot({});
    expect(await host.monitor('info status')).toBe('VM status: running');
    await host.monitor('stop');
    expect((await host.status()).state).toBe('paused');
    expect(await host.monitor('info status')).toBe('VM status: paused');
    await host.monitor('cont');
    expect((await host.status()).state).toBe('running');
  });

  it('refuses files at once for a VM without the file channel (an old snapshot), and without a VM', async () => {
    const { host } = makeHost();
    await expect(host.putFile('/root/x', new Uint8Array(1))).rejects.toMatchObject({ code: 'bad-state' });
    await host.boot({}); // the fake's command line has no file channel
    await expect(host.putFile('/root/x', new Uint8Array(1))).rejects.toMatchObject({ code: 'file-failed', message: expect.stringMatching(/no file channel/) });
    await expect(host.getFile('/root/x')).rejects.toMatchObject({ code: 'file-failed' });
    expect((await host.status()).state).toBe('running');
  });

  it('rejects invalid RAM before touching a running guest', async () => {
    const { host, backend } = makeHost();
    await host.boot({});
    await expect(host.boot({ ramMiB: 100 })).rejects.toMatchObject({ code: 'bad-options', message: /invalid RAM size 100 MiB/ });
    expect(backend.instances[0]!.running).toBe(true);
  });

  it('reports boot-timeout and kills a guest that never gets ready', async () => {
    const backend = new FakeBackend({ silent: true });
    const { host } = makeHost({ backend });
    await expect(host.boot({ bootTimeoutMs: 50 })).rejects.toMatchObject({ code: 'boot-timeout', message: /did not reach its shell/ });
    expect(backend.instances[0]!.killed).toBe(true);
    expect(await host.status()).toMatchObject({ state: 'error', error: { code: 'boot-timeout' } });
  });

  it('reports qemu-exited with QEMU\'s own words', async () => {
    const { host } = makeHost({ backend: new FakeBackend({ exitStatus: 1 }) });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'qemu-exited', message: /status 1.*fake failure/ });
  });

  it('reports a missing wasm as load-failed with the URL', async () => {
    const { host } = makeHost({ fetch: fakeFetch({ 'qemu/v1/qemu-system-arm.wasm': null }) });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'load-failed', message: /qemu-system-arm\.wasm: HTTP 404/ });
  });

  it('reports a corrupt wasm as load-failed', async () => {
    const { host } = makeHost({ fetch: fakeFetch({ 'qemu/v1/qemu-system-arm.wasm': new TextEncoder().encode('<html>oops</html>') }) });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'load-failed', message: /not a WebAssembly module/ });
  });

  it('reports an instantiation failure as load-failed', async () => {
    const { host } = makeHost({ backend: new FakeBackend({ launchError: 'CompileError: bad section' }) });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'load-failed', message: /failed to start: CompileError/ });
  });

  it('reports an Emscripten abort on a bad wasm as load-failed', async () => {
    const backend = new FakeBackend({ abortMessage: 'QEMU aborted: CompileError: WebAssembly.instantiate(): expected section' });
    const { host } = makeHost({ backend });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'load-failed', message: /wasm did not load.*CompileError/ });
  });

  it('ends QEMU when a thread traps, instead of hanging until the boot timeout', async () => {
    const backend = new FakeBackend({ crashLine: 'worker sent an error! qemu-system-arm.js:1: Uncaught RuntimeError: function signature mismatch' });
    const { host } = makeHost({ backend });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'qemu-exited', message: /crashed: .*function signature mismatch/ });
    expect(backend.instances[0]!.killed).toBe(true);
  });

  it('a trap after boot ends QEMU and puts the reason in the status', async () => {
    const { host, backend } = makeHost();
    await host.boot({});
    const inFlight = host.monitor('info mtree');
    expect(host.absorbUncaughtError('Uncaught RuntimeError: function signature mismatch')).toBe(true);
    await expect(inFlight).rejects.toMatchObject({ code: 'qemu-exited', message: /signature mismatch/ });
    await new Promise((r) => setTimeout(r, 10));
    expect(await host.status()).toMatchObject({ state: 'error', error: { code: 'qemu-exited', message: /crashed: .*signature mismatch/ } });
    expect(backend.instances[0]!.killed).toBe(true);
    expect(host.absorbUncaughtError('the rethrown trap')).toBe(true);
  });

  it('reports a trap while QEMU is still starting', async () => {
    const backend = new FakeBackend({ hangLaunch: true, crashLine: 'worker sent an error! x.js:1: Uncaught RuntimeError: function signature mismatch' });
    const { host } = makeHost({ backend });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'qemu-exited', message: /crashed: .*signature mismatch/ });
    expect(await host.status()).toMatchObject({ state: 'error' });
  });

  it('times out a QEMU that hangs while starting', async () => {
    const { host } = makeHost({ backend: new FakeBackend({ hangLaunch: true }) });
    await expect(host.boot({ bootTimeoutMs: 50 })).rejects.toMatchObject({ code: 'boot-timeout' });
  });

  it('says what to do when the manifest is missing', async () => {
    const { host } = makeHost({ fetch: fakeFetch({ 'manifest.json': null }) });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'load-failed', message: /npm run artifacts/ });
  });

  it('refuses to boot without cross-origin isolation', async () => {
    const { host } = makeHost({ isolated: false });
    await expect(host.boot({})).rejects.toMatchObject({ code: 'not-isolated', message: /Cross-Origin-Embedder-Policy/ });
  });
});

describe('QemuHost lifecycle', () => {
  it('stop ends QEMU and later calls say it is not running', async () => {
    const { host, backend } = makeHost();
    await host.boot({});
    expect((await host.stop()).state).toBe('stopped');
    expect(backend.instances[0]!.killed).toBe(true);
    await expect(host.monitor('info status')).rejects.toMatchObject({ code: 'bad-state' });
  });

  it('stop during boot cancels the boot without an error state', async () => {
    const { host } = makeHost({ backend: new FakeBackend({ silent: true }) });
    const boot = host.boot({});
    await new Promise((r) => setTimeout(r, 20));
    await host.stop();
    await expect(boot).rejects.toMatchObject({ code: 'bad-state', message: /cancelled/ });
    expect((await host.status()).state).toBe('stopped');
  });

  it('a guest that quits is stopped, not an error', async () => {
    const { host } = makeHost();
    await host.boot({});
    await host.monitor('quit').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 10));
    expect(await host.status()).toMatchObject({ state: 'stopped', error: null });
  });

  it('reset waits for the guest to come back', async () => {
    const { host } = makeHost();
    await host.boot({});
    expect((await host.reset()).state).toBe('running');
  });

  it('booting again replaces the running instance', async () => {
    const { host, backend } = makeHost();
    await host.boot({ guest: 'arm' });
    const s = await host.boot({ guest: 'i386' });
    expect(s.build).toBe('qemu-system-i386@v1');
    expect(backend.instances[0]!.killed).toBe(true);
  });
});
