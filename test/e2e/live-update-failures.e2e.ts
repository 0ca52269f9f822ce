// Runs in Node (node:test): live updates that fail, in Debian's Chromium
// with the real QEMU and guest. Whatever fails, the guest keeps running:
// either the update is refused before the VM stops, or QEMU (missing
// build) or the host (a new build that fails after the VM stopped)
// restarts the VM on the old build, from the same state.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { BOOT_TIMEOUT_MS, e2eLog, sharedBrowser, liveUpdateUnavailable, openPage, waitForState, within, guestShell as shell } from './harness';

const shared = sharedBrowser();
const log = e2eLog;

async function bootArm(extraArgs: string[] = [], fault?: string): Promise<Page> {
  const page = await openPage(shared.browser, fault ? `${shared.server.url}?fault=${fault}` : shared.server.url, log);
  await page.evaluate((extraArgs) => window.playground.boot({ guest: 'arm', ramMiB: 128, build: 'v1', extraArgs }), extraArgs);
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  return page;
}

/** liveUpdate() that must fail: its error code and message. */
async function failingUpdate(page: Page, target: string, timeoutMs?: number): Promise<{ code: string; message: string }> {
  return within(
    400_000,
    `live update to ${target}`,
    page.evaluate(async ({ t, timeoutMs }) => {
      try {
        const r = await window.playground.liveUpdate(t, timeoutMs === undefined ? {} : { timeoutMs });
        return { code: 'resolved', message: JSON.stringify(r) };
      } catch (e) {
        const err = e as { code?: string; message?: string };
        return { code: err.code ?? 'none', message: err.message ?? String(e) };
      }
    }, { t: target, timeoutMs }),
  );
}

/** Plants 1 MiB of random bytes in the guest's tmpfs; returns their sha256 line. */
async function plantRandom(page: Page): Promise<string> {
  await shell(page, 'head -c 1048576 /dev/urandom > /tmp/random; echo planted', /^planted$/m);
  return (await shell(page, 'sha256sum /tmp/random', /^[0-9a-f]{64}(?=\s)/m)).trim();
}

/**
 * Types cpr-exec to v2 with the guest's command line changed by `edit`,
 * so that the new QEMU cannot run the VM: the host must start v1 again
 * from the same state, the guest's bytes intact.
 */
async function typedUpdateFallsBack(edit: (argv: string[]) => string[]): Promise<void> {
  const page = await bootArm();
  const sha = await plantRandom(page);
  const argv = edit(await page.evaluate(() => window.playground.status().argv.slice(1)));
  const quoted = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ');
  const outcome = page.evaluate(
    () => new Promise<string>((resolve) => {
      const off = window.playground.onStatus((s) => {
        if (s.state === 'running' && s.build) {
          off();
          resolve(s.build);
        }
      });
    }),
  );
  await page.evaluate(() => window.playground.monitor('migrate_set_parameter mode cpr-exec'));
  await page.evaluate((q) => window.playground.monitor(`migrate_set_parameter cpr-exec-command qemu-system-arm@v2 ${q} -incoming file:vm.state`), quoted);
  await page.evaluate(() => window.playground.monitor('migrate -d file:vm.state'));
  await page.waitForFunction(() => window.playground.status().state === 'updating', null, { timeout: 120_000, polling: 50 }).catch(() => undefined);
  assert.equal(await within(300_000, 'the fallback', outcome), 'qemu-system-arm@v1');
  await stillRunsOnV1(page, sha);
}

/** Waits until QEMU's migration reaches `status` (info migrate). */
async function migrationReaches(page: Page, status: RegExp): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (status.test(await page.evaluate(() => window.playground.monitor('info migrate')))) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`the migration never reached ${status}`);
}

/** The guest runs on v1, its tmpfs file intact and its shell answering. */
async function stillRunsOnV1(page: Page, sha?: string): Promise<void> {
  assert.match(await page.evaluate(() => window.playground.monitor('info status')), /VM status: running/);
  const s = await page.evaluate(() => window.playground.status());
  assert.equal(s.state, 'running');
  assert.equal(s.build, 'qemu-system-arm@v1');
  assert.match(await shell(page, 'echo alive-$((5*5))', /^alive-25$/m), /alive-25/);
  if (sha) assert.equal((await shell(page, 'sha256sum /tmp/random', /^[0-9a-f]{64}(?=\s)/m)).trim(), sha);
}

/** A valid wasm module that imports a function no glue provides: it
 * compiles, and fails to instantiate (LinkError). */
const UNLINKABLE_WASM = Buffer.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
  0x02, 0x17, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x0f, // import section: "env".
  ...Buffer.from('cpr_not_a_func1'), 0x00, 0x00, // "cpr_not_a_func1" func type 0
]);

describe('live update failures keep the guest', { timeout: 60 * 60_000, skip: liveUpdateUnavailable() }, () => {
  it('a missing build: refused at once, and QEMU itself restarts the VM when it was typed', { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm();
    const refused = await failingUpdate(page, 'v9');
    assert.equal(refused.code, 'bad-options');
    assert.match(refused.message, /unknown build "v9"/);
    await stillRunsOnV1(page);

    // Typed: QEMU's exec of an unknown name fails (ENOENT); QEMU restarts the VM.
    const argv = await page.evaluate(() => window.playground.status().argv.slice(1));
    const quoted = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ');
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    await page.evaluate(() => window.playground.monitor('migrate_set_parameter mode cpr-exec'));
    await page.evaluate((q) => window.playground.monitor(`migrate_set_parameter cpr-exec-command qemu-system-arm@v9 ${q} -incoming file:vm.state`), quoted);
    await page.evaluate(() => window.playground.monitor('migrate -d file:vm.state'));
    await page.waitForFunction(() => true);
    const deadline = Date.now() + 120_000;
    let info = '';
    while (Date.now() < deadline) {
      info = await page.evaluate(() => window.playground.monitor('info migrate'));
      if (/failed/.test(info)) break;
      await page.waitForTimeout(500);
    }
    log(`info migrate: ${info}`);
    assert.match(info, /failed \(execvp qemu-system-arm@v9 failed: No such file or directory\)/, 'QEMU says why the migration failed');
    assert.ok(logs.some((l) => /no QEMU build named "qemu-system-arm@v9"/.test(l)), 'the reason is logged');
    await page.waitForFunction(async () => /running/.test(await window.playground.monitor('info status')), null, { timeout: 60_000, polling: 500 });
    await stillRunsOnV1(page);
  });

  it('a build whose wasm does not compile: refused before the VM stops', { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm();
    await page.route('**/qemu/v2/qemu-system-arm.wasm*', (route) =>
      route.fulfill({ status: 200, contentType: 'application/wasm', body: Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), Buffer.from('not wasm at all')]) }),
    );
    const refused = await failingUpdate(page, 'v2');
    log(`compile failure: ${JSON.stringify(refused)}`);
    assert.equal(refused.code, 'live-update-refused');
    assert.match(refused.message, /does not compile/);
    assert.match(refused.message, /untouched/);
    await stillRunsOnV1(page);
  });

  it('a build that fails to instantiate after the VM stopped: the old build takes the guest back', { timeout: BOOT_TIMEOUT_MS + 400_000 }, async () => {
    const page = await bootArm();
    await shell(page, 'head -c 1048576 /dev/urandom > /tmp/random; echo planted', /^planted$/m);
    const sha = (await shell(page, 'sha256sum /tmp/random', /^[0-9a-f]{64}(?=\s)/m)).trim();
    await page.route('**/qemu/v2/qemu-system-arm.wasm*', (route) => route.fulfill({ status: 200, contentType: 'application/wasm', body: UNLINKABLE_WASM }));
    const failed = await failingUpdate(page, 'v2');
    log(`instantiate failure: ${JSON.stringify(failed)}`);
    assert.equal(failed.code, 'live-update-failed');
    assert.match(failed.message, /runs again on qemu-system-arm@v1/);
    await stillRunsOnV1(page, sha);
  });

  it('a new QEMU that cannot take the state (RAM size changed): the old build takes the guest back', { timeout: BOOT_TIMEOUT_MS + 400_000 }, async () => {
    // The same command line with 256 MiB instead of 128: the RAM block in
    // the state and the memfd kept for it no longer fit.
    await typedUpdateFallsBack((argv) => argv.map((a) => (a === '128' ? '256' : a.replace('size=128M', 'size=256M'))));
  });

  it('an update that does not reach exec in time is given up: migration cancelled, the VM runs on, the next update works', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    const page = await bootArm();
    const sha = await plantRandom(page);
    // QEMU waits before the switchover until told to go on: no exec comes.
    await page.evaluate(() => window.playground.monitor('migrate_set_capability pause-before-switchover on'));
    const failed = await failingUpdate(page, 'v2', 5000);
    log(`timed out: ${JSON.stringify(failed)}`);
    assert.equal(failed.code, 'live-update-failed');
    assert.match(failed.message, /gave up: no exec within 5000 ms; the VM runs on qemu-system-arm@v1/);
    await stillRunsOnV1(page, sha);
    await page.evaluate(() => window.playground.monitor('migrate_set_capability pause-before-switchover off'));
    const r = await within(300_000, 'the next live update', page.evaluate(() => window.playground.liveUpdate('v2')));
    assert.equal(r.to, 'qemu-system-arm@v2');
    assert.equal((await shell(page, 'sha256sum /tmp/random', /^[0-9a-f]{64}(?=\s)/m)).trim(), sha);
  });

  it('QEMU ends in the middle of an update: the update fails and the page says QEMU ended, nothing hangs', { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm();
    await page.evaluate(() => window.playground.monitor('migrate_set_capability pause-before-switchover on'));
    const pending = failingUpdate(page, 'v2', 120_000);
    await migrationReaches(page, /pre-switchover/);
    assert.equal(await page.evaluate(() => window.playground.status().state), 'updating');
    // The user quits QEMU from the HMP console while it waits.
    await page.evaluate(() => window.playground.sendMonitor('quit\r'));
    const failed = await pending;
    log(`QEMU ended mid-update: ${JSON.stringify(failed)}`);
    assert.equal(failed.code, 'live-update-failed');
    assert.match(failed.message, /QEMU ended during the live update/);
    await page.waitForFunction(() => window.playground.status().state === 'stopped', null, { timeout: 60_000 });
    // A new boot works: nothing of the old session is left pending.
    await page.evaluate(() => window.playground.boot({ guest: 'arm', ramMiB: 128, build: 'v1' }));
    await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  });

  it('a new QEMU that exits at start (bad option): tried twice, then the old build takes the guest back from the same state', { timeout: BOOT_TIMEOUT_MS + 400_000 }, async () => {
    await typedUpdateFallsBack((argv) => [...argv, '-no-such-option']);
  });

  it('the new instance worker killed mid-update (injected fault): tried twice, then the old build takes the guest back', { timeout: BOOT_TIMEOUT_MS + 400_000 }, async () => {
    const page = await bootArm([], 'kill-new-instance');
    const sha = await plantRandom(page);
    const failed = await failingUpdate(page, 'v2');
    log(`killed new instance: ${JSON.stringify(failed)}`);
    assert.equal(failed.code, 'live-update-failed');
    assert.match(failed.message, /runs again on qemu-system-arm@v1/);
    await stillRunsOnV1(page, sha);
  });

  it('the device state truncated between save and load (injected fault): the new QEMU refuses it, the old build loads the whole state', { timeout: BOOT_TIMEOUT_MS + 400_000 }, async () => {
    const page = await bootArm([], 'truncate-state');
    const sha = await plantRandom(page);
    const failed = await failingUpdate(page, 'v2');
    log(`truncated state: ${JSON.stringify(failed)}`);
    assert.equal(failed.code, 'live-update-failed');
    assert.match(failed.message, /runs again on qemu-system-arm@v1/);
    await stillRunsOnV1(page, sha);
  });

  it('a configuration that cannot live-update (RAM not shared): refused before the VM stops, with QEMU\'s reason', { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm(['-machine', 'aux-ram-share=off']);
    const refused = await failingUpdate(page, 'v2');
    log(`private RAM: ${JSON.stringify(refused)}`);
    assert.equal(refused.code, 'live-update-refused');
    assert.match(refused.message, /QEMU says: .*not compatible with CPR/);
    await stillRunsOnV1(page);
  });

  it('a device with a migration blocker (virtio-crypto): refused before the VM stops, with QEMU\'s reason', { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm(['-object', 'cryptodev-backend-builtin,id=cr0', '-device', 'virtio-crypto-device,cryptodev=cr0']);
    const refused = await failingUpdate(page, 'v2');
    log(`device blocker: ${JSON.stringify(refused)}`);
    assert.equal(refused.code, 'live-update-refused');
    assert.match(refused.message, /QEMU says: .*virtio-crypto/);
    await stillRunsOnV1(page);
  });
});
