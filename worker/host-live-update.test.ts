// Runs in Node (vitest): every route out of a live update, against the fake
// QEMU (test/fakes/fake-qemu.ts), which speaks HMP, QMP and cpr-exec's
// exec the way the real one does. Each route must end the pending update
// (a second update is possible afterwards) and leave the page's state
// right. The real QEMU runs the same routes in the e2e tests.
import { describe, expect, it } from 'vitest';
import { FAKE_RAM_MARK, FakeBackend, fakeFetch, SLOTTED_GLUES, type FakeOptions } from '../test/fakes/fake-qemu';
import { RegionTable } from './qemu/memory';
import type { BootOptions, ExecFault, LiveUpdateResult, Status } from './api';
import { QemuHost } from './host';

const BASE = 'http://test/artifacts/';

async function booted(perLaunch: FakeOptions[] = [], opts: FakeOptions = {}, faults: ExecFault[] = [], boot: BootOptions = {}, glues: Record<string, Uint8Array> = {}) {
  const backend = new FakeBackend(opts);
  backend.perLaunch = perLaunch;
  const host = new QemuHost({
    backend,
    fetch: fakeFetch(glues),
    isolated: () => true,
    updateAttemptMs: 200,
  });
  const states: Status['state'][] = [];
  const updates: LiveUpdateResult[] = [];
  const enc = new TextEncoder();
  await host.init(
    { artifactsBase: BASE, faults },
    {
      serial: () => undefined,
      monitor: () => undefined,
      status: (s) => states.push(s.state),
      progress: () => undefined,
      log: () => undefined,
      liveUpdate: (r) => updates.push(r),
    },
  );
  await host.boot({ guest: 'arm', build: 'v1', ...boot });
  const typeHmp = async (line: string): Promise<void> => {
    await host.writeMonitor(enc.encode(`${line}\r`));
    await new Promise((r) => setTimeout(r, 10));
  };
  return { host, backend, states, updates, typeHmp };
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

describe('live update routes (fake QEMU)', () => {
  it('keeps the engine across a live update: the interpreter stays the interpreter', async () => {
    const { host, backend } = await booted([], {}, [], { accel: 'interpreter' });
    expect(await host.status()).toMatchObject({ accel: 'interpreter' });
    expect(backend.instances[0]!.req.env).toMatchObject({ QEMU_TCI_JIT: 'off' });
    await host.liveUpdate('v2');
    expect(backend.instances[1]!.req.env).toMatchObject({ QEMU_TCI_JIT: 'off' });
    expect(await host.status()).toMatchObject({ state: 'running', accel: 'interpreter' });
  });

  it('cpr-exec: QMP commands, exec, the new build runs the VM; again and back', async () => {
    const { host, backend, updates } = await booted();
    const r = await host.liveUpdate('v2');
    expect(r).toMatchObject({ from: 'qemu-system-arm@v1', to: 'qemu-system-arm@v2', route: 'cpr-exec' });
    expect(r.pauseMs).toBeGreaterThanOrEqual(0);
    expect(Object.values(r.phases).every((ms) => ms >= 0)).toBe(true);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2', error: null });
    expect(updates).toEqual([r]);
    // Over QMP, not HMP: the user's console saw none of it.
    expect(backend.instances[0]!.qmpLog).toEqual(expect.arrayContaining(['migrate-set-parameters', 'migrate']));
    expect(backend.instances[0]!.killed).toBe(true);
    expect(backend.instances[1]!.req.argv).toEqual(expect.arrayContaining(['-incoming', 'file:/vm.state']));
    const back = await host.liveUpdate('v1');
    expect(back.to).toBe('qemu-system-arm@v1');
    expect(await host.monitor('info status')).toBe('VM status: running');
  });

  it('stops the VM only once the next instance is staged', async () => {
    const { host, backend } = await booted();
    let staged!: () => void;
    const ready = new Promise<void>((resolve) => (staged = resolve));
    Object.assign(backend, { prewarm: (jsUrl: string) => ({ jsUrl, ready, dispose: () => undefined }) });
    const update = host.liveUpdate('v2');
    await settle(100);
    expect(backend.instances[0]!.qmpLog).not.toContain('migrate');
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
    staged();
    expect(await update).toMatchObject({ to: 'qemu-system-arm@v2' });
    expect(backend.instances[0]!.qmpLog).toContain('migrate');
  });

  it('refused by QEMU (a blocker): the error says QEMU\'s reason, the guest runs on, the next update works', async () => {
    const { host, backend } = await booted([{ migrate: 'blocked' }]);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-refused', message: /QEMU says: Memory region pc\.ram is not compatible with CPR.*untouched/ });
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
    expect(backend.instances[0]!.killed).toBe(false);
    // Not wedged: a second update is not "in progress"; QEMU refuses it again.
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-refused' });
  });

  it('timed out before exec: the migration is cancelled, the VM runs on, nothing is left pending', async () => {
    const { host, backend } = await booted([{ migrate: 'hang' }]);
    await expect(host.liveUpdate('v2', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'live-update-failed', message: /gave up: no exec within 50 ms; the VM runs on qemu-system-arm@v1/ });
    expect(backend.instances[0]!.qmpLog).toContain('migrate_cancel');
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
    await expect(host.liveUpdate('v2', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'live-update-failed', message: /gave up/ });
  });

  it('the migration fails in QEMU: QEMU runs the VM again, the error says why', async () => {
    const { host } = await booted([{ migrate: 'fail' }]);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed', message: /QEMU says: fake: could not write the state/ });
    await settle();
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
  });

  it('QEMU dies mid-update: the update fails and the page learns that QEMU exited', async () => {
    const { host } = await booted([{ migrate: 'die' }]);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed', message: /QEMU ended during the live update: .*status 1/ });
    await settle();
    expect(await host.status()).toMatchObject({ state: 'error', error: { code: 'qemu-exited', message: /status 1/ } });
  });

  it('the new build cannot load the state: tried twice, then the old build takes the VM back', async () => {
    const { host, backend } = await booted([{}, { incomingFails: true }, { incomingFails: true }, {}]);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed', message: /runs again on qemu-system-arm@v1/ });
    expect(backend.instances).toHaveLength(4);
    expect(backend.instances[3]!.req.jsUrl).toMatch(/v1\/qemu-system-arm\.js$/);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
    expect(await host.monitor('info status')).toBe('VM status: running');
  });

  it('the new build never answers: each attempt times out, the old build takes the VM back', async () => {
    const { host } = await booted([{}, { incomingHangs: true }, { incomingHangs: true }, {}]);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed', message: /did not run the VM within 200 ms.*runs again on qemu-system-arm@v1/ });
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
  });

  it('the old build\'s first restart does not run the VM: it is started once more and takes the VM back', async () => {
    const { host, backend } = await booted([{}, { incomingFails: true }, { incomingFails: true }, { incomingHangs: true }, {}]);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed', message: /runs again on qemu-system-arm@v1/ });
    expect(backend.instances).toHaveLength(5);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
  });

  it('the new build traps while it starts: not the session\'s crash; the old build takes the VM back', async () => {
    const trap = { crashLine: 'worker sent an error! qemu-system-arm.js:1: Uncaught RuntimeError: Aborted()' };
    const { host, states } = await booted([{}, trap, trap]);
    await expect(host.liveUpdate('v2')).rejects.toThrow(/runs again on qemu-system-arm@v1/);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1', error: null });
    expect(states).not.toContain('error');
  });

  it('the fallback fails too: the session is lost, and the page says why', async () => {
    const { host, backend } = await booted([{}, { incomingFails: true }, { incomingFails: true }, { incomingFails: true }, { incomingFails: true }]);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed', message: /restarting qemu-system-arm@v1 failed too/ });
    // Two tries of the new build, two of the old one.
    expect(backend.instances.map((q) => q.req.jsUrl.replace(/^.*qemu\//, ''))).toEqual(['v1/qemu-system-arm.js', 'v2/qemu-system-arm.js', 'v2/qemu-system-arm.js', 'v1/qemu-system-arm.js', 'v1/qemu-system-arm.js']);
    await settle();
    expect(await host.status()).toMatchObject({ state: 'error', error: { code: 'live-update-failed' } });
  });

  it('typed into the HMP console: the host follows QEMU\'s exec and reports the update', async () => {
    const { host, backend, updates, typeHmp } = await booted();
    await typeHmp('migrate_set_parameter mode cpr-exec');
    await typeHmp('migrate_set_parameter cpr-exec-command qemu-system-arm@v2 -M virt -incoming file:vm.state');
    await typeHmp('migrate -d file:vm.state');
    for (let i = 0; i < 500 && updates.length === 0; i++) await settle(10);
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ from: 'qemu-system-arm@v1', to: 'qemu-system-arm@v2', route: 'cpr-exec' });
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2', argv: ['qemu-system-arm', '-M', 'virt', '-incoming', 'file:vm.state', '-chardev', 'pipe,id=qmp0,path=/dev/cpr-qmp', '-mon', 'chardev=qmp0,mode=control'] });
    // The host never wrote to the user's console.
    expect(backend.instances[0]!.qmpLog).not.toContain('migrate');
  });

  it('injected fault: each new QEMU ends right after its launch; the old build takes the VM back', async () => {
    const { host, backend } = await booted([], {}, ['kill-new-instance']);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed', message: /runs again on qemu-system-arm@v1/ });
    expect(backend.instances.map((q) => q.req.jsUrl.replace(/^.*qemu\//, ''))).toEqual(['v1/qemu-system-arm.js', 'v2/qemu-system-arm.js', 'v2/qemu-system-arm.js', 'v1/qemu-system-arm.js']);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
  });

  it('injected fault: the new QEMU gets a truncated state, the fallback the whole one', async () => {
    const { host, backend } = await booted([{}, { incomingFails: true }, { incomingFails: true }, {}], {}, ['truncate-state']);
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'live-update-failed' });
    expect(backend.instances[1]!.req.files['/vm.state']).toHaveLength(2);
    expect(backend.instances[3]!.req.files['/vm.state']).toHaveLength(4);
  });

  it('an unknown fault is refused at init', async () => {
    const host = new QemuHost({ backend: new FakeBackend(), fetch: fakeFetch(), isolated: () => true });
    const listener = { serial: () => undefined, monitor: () => undefined, status: () => undefined, progress: () => undefined, log: () => undefined, liveUpdate: () => undefined };
    await expect(host.init({ artifactsBase: BASE, faults: ['melt' as ExecFault] }, listener)).rejects.toMatchObject({ code: 'bad-options', message: /unknown fault "melt"/ });
  });

  it('stop() during an update ends it', async () => {
    const { host } = await booted([{ migrate: 'hang' }]);
    const pending = host.liveUpdate('v2', { timeoutMs: 10_000 });
    await settle();
    await host.stop();
    await expect(pending).rejects.toMatchObject({ code: 'bad-state', message: /stopped during the live update/ });
    expect((await host.status()).state).toBe('stopped');
  });

  it('copy route: stop, migrate to a file, a fresh instance loads it and runs', async () => {
    const { host, backend } = await booted();
    const r = await host.liveUpdate('v2', { route: 'copy' });
    expect(r).toMatchObject({ route: 'copy', to: 'qemu-system-arm@v2' });
    expect(backend.instances[1]!.req.argv).toEqual(expect.arrayContaining(['-global', 'migration.x-events=on', '-incoming', 'file:/vm.copy']));
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2' });
  });

  it('pause and resume come from QEMU\'s events, whoever stops the VM', async () => {
    const { host, typeHmp } = await booted();
    await typeHmp('stop');
    expect((await host.status()).state).toBe('paused');
    await typeHmp('cont');
    expect((await host.status()).state).toBe('running');
  });
});

describe('the next QEMU started early (fake QEMU, builds in two slots)', () => {
  const early = (perLaunch: FakeOptions[] = [], faults: ExecFault[] = []) => booted(perLaunch, {}, faults, {}, SLOTTED_GLUES);

  it('starts the next build before the VM stops, hands it the exec; again and back', async () => {
    const { host, backend } = await early();
    const r = await host.liveUpdate('v2');
    expect(r).toMatchObject({ to: 'qemu-system-arm@v2', startedEarly: true, phases: { teardownMs: 0, clearMs: 0, instantiateMs: 0 } });
    const [old, next] = backend.instances;
    expect(next!.req.early).toBe(true);
    // It reopened what the running QEMU had open, then got the exec.
    expect(next!.req.adopt).toEqual(old!.ram);
    expect(next!.handedOver?.env).toEqual(['QEMU_CPR_EXEC_STATE=9']);
    expect(Object.keys(next!.handedOver!.files)).toEqual(['/vm.state']);
    expect(old!.killed).toBe(true);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2', error: null });
    const back = await host.liveUpdate('v1');
    expect(back).toMatchObject({ to: 'qemu-system-arm@v1', startedEarly: true });
    expect(await host.monitor('info status')).toBe('VM status: running');
  });

  it('a build in the same slot starts at the exec, as before', async () => {
    const { host } = await early();
    await host.liveUpdate('v2');
    expect(await host.liveUpdate('v2')).toMatchObject({ startedEarly: false });
  });

  it('the QEMU started early cannot load the state: the old build takes the VM back, and the next update works', async () => {
    const { host, backend } = await early([{}, { incomingFails: true }]);
    await expect(host.liveUpdate('v2')).rejects.toThrow(/failed.*runs again on qemu-system-arm@v1/);
    expect(backend.instances[1]!.handedOver).not.toBeNull();
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
    expect(await host.liveUpdate('v2')).toMatchObject({ startedEarly: true });
  });

  it('the QEMU started early exits before its CPR state: the update starts the build at the exec', async () => {
    const { host, backend } = await early([{}, { exitStatus: 1 }]);
    const r = await host.liveUpdate('v2');
    expect(r).toMatchObject({ to: 'qemu-system-arm@v2', startedEarly: false });
    expect(backend.instances[1]!.handedOver).toBeNull();
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2' });
  });

  it('refused by QEMU: the QEMU started early is ended, the guest runs on', async () => {
    const { host, backend } = await early([{ migrate: 'blocked' }]);
    await expect(host.liveUpdate('v2')).rejects.toThrow(/refused/);
    await settle();
    expect(backend.instances[1]!.killed).toBe(true);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
  });
});

describe('snapshots (fake QEMU)', () => {
  it('refuses a live update while a snapshot is being saved; the save goes on', async () => {
    const { host } = await booted();
    const saving = host.saveSnapshot();
    await expect(host.liveUpdate('v2')).rejects.toMatchObject({ code: 'bad-state', message: /snapshot is being saved/ });
    expect((await saving).size).toBeGreaterThan(0);
  });

  it('saves the running VM to a snapshot file and restores it, on the same build or another', async () => {
    const { host, backend } = await booted();
    const file = new Uint8Array(await (await host.saveSnapshot()).arrayBuffer());
    // Format 2: a cpr-exec migration whose exec is the capture, refused.
    expect(new TextDecoder().decode(file.subarray(0, 26))).toBe('CPR-PLAYGROUND-SNAPSHOT 2\n');
    expect(backend.instances[0]!.qmpLog).toEqual(expect.arrayContaining(['query-migrate-parameters', 'migrate-set-parameters', 'migrate']));
    expect(await host.status()).toMatchObject({ state: 'running' });
    // The parameters are back as they were: a later typed migrate does not capture.
    expect(backend.instances[0]!.params).toMatchObject({ mode: 'normal', 'cpr-exec-command': [] });
    const info = await host.checkSnapshot(file);
    expect(info).toMatchObject({ guest: 'arm', build: 'qemu-system-arm@v1', ramMiB: 128 });
    expect(await host.openSnapshot(file, { build: 'v2' })).toEqual(info);
    expect(backend.instances[0]!.killed).toBe(false);
    const s = await host.restoreOpened();
    expect(s).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2' });
    expect(backend.instances[0]!.killed).toBe(true);
    const restored = backend.instances[1]!;
    const req = restored.req;
    expect(req.argv.slice(-4)).toEqual(['-global', 'migration.x-events=on', '-incoming', 'file:/snapshot.state']);
    // The device state as checked, handed to the instance worker, not copied.
    const state = req.files['/snapshot.state']!;
    expect(state.subarray(0, 4)).toEqual(new Uint8Array([0x51, 0x45, 0x56, 0x4d]));
    expect(req.transfer).toEqual([state.buffer]);
    // Guest RAM is back in a fresh Memory where it was, and QEMU takes it over.
    expect(req.adopt).toEqual(backend.instances[0]!.ram);
    expect(req.env).toEqual({ QEMU_TCI_JIT: 'on', QEMU_CPR_EXEC_STATE: '9' });
    expect(req.memory).not.toBe(backend.instances[0]!.req.memory);
    const e = new RegionTable(req.memory!).entry(req.adopt![0]!.file);
    expect([...new Uint8Array(req.memory!.buffer, e.base, 4)]).toEqual(FAKE_RAM_MARK);
    // Taken once: a second restore needs another openSnapshot().
    await expect(host.restoreOpened()).rejects.toMatchObject({ code: 'bad-state', message: /openSnapshot/ });
    // A restored VM live-updates like a booted one.
    expect((await host.liveUpdate('v1')).to).toBe('qemu-system-arm@v1');
  });

  it('a capture that fails fails the save with the reason; the VM runs on and the parameters are back', async () => {
    const { host, backend } = await booted([{ captureFails: true }]);
    await expect(host.saveSnapshot()).rejects.toMatchObject({ code: 'snapshot-failed', message: /device state .* missing.*the VM runs on/ });
    expect(await host.status()).toMatchObject({ state: 'running' });
    expect(backend.instances[0]!.vmState).toBe('running');
    expect(backend.instances[0]!.params).toMatchObject({ mode: 'normal' });
    // And the next save works.
    backend.instances[0]!.opts.captureFails = false;
    expect(new TextDecoder().decode(new Uint8Array(await (await host.saveSnapshot()).arrayBuffer()).subarray(0, 26))).toBe('CPR-PLAYGROUND-SNAPSHOT 2\n');
  });

  it('saves a VM whose RAM cpr-exec refuses as a migration with RAM (format 1), and restores that', async () => {
    const { host, backend } = await booted([{ migrate: 'blocked' }]);
    const file = new Uint8Array(await (await host.saveSnapshot()).arrayBuffer());
    expect(new TextDecoder().decode(file.subarray(0, 26))).toBe('CPR-PLAYGROUND-SNAPSHOT 1\n');
    expect(backend.instances[0]!.qmpLog).toEqual(expect.arrayContaining(['stop', 'migrate', 'cont']));
    expect(await host.status()).toMatchObject({ state: 'running' });
    await host.openSnapshot(file);
    expect(await host.restoreOpened()).toMatchObject({ state: 'running' });
    expect(backend.instances[1]!.req.adopt).toBeUndefined();
  });

  it('boots from the shipped booted snapshot: restored, not booted, and a fresh prompt is asked for', async () => {
    const file = new Uint8Array(await (await (await booted()).host.saveSnapshot()).arrayBuffer());
    const backend = new FakeBackend();
    const serial: string[] = [];
    const host = new QemuHost({
      backend,
      fetch: fakeFetch({ 'snapshots/arm.cprsnap': file }),
      isolated: () => true,
    });
    await host.init({ artifactsBase: BASE }, {
      serial: (b) => serial.push(new TextDecoder().decode(b)),
      monitor: () => undefined,
      status: () => undefined,
      progress: () => undefined,
      log: () => undefined,
      liveUpdate: () => undefined,
    });
    await expect(host.boot({ guest: 'i386', from: 'snapshot' })).rejects.toMatchObject({ code: 'load-failed', message: /booted snapshot did not load.*from: "scratch"/ });
    expect(await host.boot({ guest: 'arm', build: 'v2', from: 'snapshot' })).toMatchObject({ state: 'running', build: 'qemu-system-arm@v2' });
    expect(backend.instances).toHaveLength(1);
    expect(backend.instances[0]!.req.argv.slice(-2)).toEqual(['-incoming', 'file:/snapshot.state']);
    await settle();
    expect(serial.join('')).toContain('/ # ');
  });

  it('refuses a bad file before touching the running guest', async () => {
    const { host, backend } = await booted();
    const file = new Uint8Array(await (await host.saveSnapshot()).arrayBuffer());
    const flipped = file.slice();
    flipped[flipped.length - 3]! ^= 0x40;
    await expect(host.openSnapshot(flipped)).rejects.toMatchObject({ code: 'bad-snapshot', message: /sha256/ });
    await expect(host.openSnapshot(file.subarray(0, file.length - 1))).rejects.toMatchObject({ code: 'bad-snapshot', message: /truncated/ });
    await expect(host.openSnapshot(new TextEncoder().encode('hello'))).rejects.toMatchObject({ code: 'bad-snapshot', message: /magic/ });
    await expect(host.openSnapshot(file, { build: 'v7' })).rejects.toMatchObject({ code: 'bad-snapshot', message: /unknown build "v7".*nothing was changed/ });
    // A refused file leaves nothing to restore, not even an earlier good one.
    await host.openSnapshot(file);
    await expect(host.openSnapshot(flipped)).rejects.toMatchObject({ code: 'bad-snapshot' });
    await expect(host.restoreOpened()).rejects.toMatchObject({ code: 'bad-state' });
    expect(backend.instances).toHaveLength(1);
    expect(backend.instances[0]!.killed).toBe(false);
    expect(await host.status()).toMatchObject({ state: 'running', build: 'qemu-system-arm@v1' });
  });
});
