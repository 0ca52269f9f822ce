// Runs in Node (node:test): live update (cpr-exec) end to end in Debian's
// Chromium, with the real QEMU builds and the real guest. The guest must
// not notice the update beyond the pause: the same processes, the same
// tmpfs bytes, the same uptime clock, the same shell session.
// Needs live-update builds (v1 and v2 of qemu-system-arm) in the artifacts.
// Nothing here asserts on timing: pause figures are logged, the benchmarks
// (bench/) measure them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { assertContinuity, plant } from './guest-facts';
import { BOOT_TIMEOUT_MS, e2eLog, sharedBrowser, liveUpdateUnavailable, openPage, waitForState, waitForTerminal, within, guestShell as shell } from './harness';

const shared = sharedBrowser();
const log = e2eLog;

async function bootArm(extraArgs: string[] = [], ramMiB = 128): Promise<Page> {
  const page = await openPage(shared.browser, shared.server.url, log);
  await page.evaluate(({ extraArgs, ramMiB }) => window.playground.boot({ guest: 'arm', ramMiB, build: 'v1', extraArgs }), { extraArgs, ramMiB });
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  await shell(page, 'echo up-$((1+1))', /^up-2$/m);
  return page;
}

async function monitorType(page: Page, line: string): Promise<void> {
  await page.click('#monitor');
  await within(60_000, `typing ${line}`, page.keyboard.type(line));
  await within(60_000, 'pressing Enter', page.keyboard.press('Enter'));
}

/** Types QEMU's cpr-exec commands into the monitor tab, naming the new
 * build's command line with `param` (cpr-exec-command, or the first
 * proposal's cpr-exec-args); resolves when the page reports the update. */
async function typeCprExec(page: Page, param: 'cpr-exec-command' | 'cpr-exec-args'): Promise<{ pauseMs: number; to: string }> {
  const argv = await page.evaluate(() => window.playground.status().argv.slice(1));
  const quoted = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ');
  const updated = page.evaluate(
    () => new Promise<{ pauseMs: number; to: string }>((resolve, reject) => {
      const off = window.playground.onLiveUpdate((r) => {
        off();
        resolve(r);
      });
      window.playground.onStatus((s) => {
        if (s.state === 'error') reject(new Error(`${s.error?.code}: ${s.error?.message}`));
      });
    }),
  );
  await page.click('#tab-monitor');
  await waitForTerminal(page, 'monitor', (l) => l.startsWith('(qemu)'), 30_000);
  await monitorType(page, 'migrate_set_parameter mode cpr-exec');
  await monitorType(page, `migrate_set_parameter ${param} qemu-system-arm@v2 ${quoted} -incoming file:vm.state`);
  await monitorType(page, 'migrate -d file:vm.state');
  return within(300_000, 'the live update', updated);
}

describe('live update', { timeout: 60 * 60_000, skip: liveUpdateUnavailable() }, () => {
  it('cpr-exec typed into the monitor console: same guest, new build', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    const page = await bootArm();
    const planted = await plant(page);
    assert.match(await page.evaluate(() => window.playground.monitor('info version')), /10\.2\.2 \(cpr-playground v1\)/);
    // A command to find again in the shell's history after the update.
    await shell(page, 'echo history-$((40+2))', /^history-42$/m);
    const serialFrom = await page.evaluate(() => window.playground.serialOffset());
    const result = await typeCprExec(page, 'cpr-exec-command');
    log(`typed live update: ${JSON.stringify(result)}`);
    assert.equal(result.to, 'qemu-system-arm@v2');

    await monitorType(page, 'info status');
    await waitForTerminal(page, 'monitor', (l) => l.includes('VM status: running'), 60_000);
    assert.match(await page.evaluate(() => window.playground.monitor('info status')), /VM status: running/);
    const version = await page.evaluate(() => window.playground.monitor('info version'));
    log(`info version after: ${version}`);
    // The new QEMU, not the old one resumed: the builds differ in the
    // version they report.
    assert.match(version, /10\.2\.2 \(cpr-playground v2\)/);
    assert.equal(await page.evaluate(() => window.playground.status().build), 'qemu-system-arm@v2');
    assert.match((await page.locator('#update-result').textContent()) ?? '', /qemu-system-arm@v1 → qemu-system-arm@v2: guest paused \d+ ms/);

    // The same shell session: its line-editing history still has the last
    // command typed before the update; Up and Enter run it again.
    await page.click('#tab-serial');
    const from = await page.evaluate(() => window.playground.serialOffset());
    await page.click('#serial');
    await within(60_000, 'pressing Up', page.keyboard.press('ArrowUp'));
    await within(60_000, 'pressing Enter', page.keyboard.press('Enter'));
    await within(130_000, 'the command from history', page.evaluate((f) => window.playground.waitForSerial(/^history-42$/m, 120_000, { from: f }), from));
    await assertContinuity(page, planted, serialFrom);
  });

  it('the first proposal\'s example, typed: RAM in a /dev/shm file, memfd-alloc=on, cpr-exec-args', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    // As tutorials quote it; only the binary's name differs. The file
    // backend replaces the playground's own RAM backend as the machine's.
    const page = await bootArm(['-object', 'memory-backend-file,id=shm0,size=128M,mem-path=/dev/shm/ram0,share=on',
      '-machine', 'memory-backend=shm0', '-machine', 'memfd-alloc=on']);
    assert.match(await page.evaluate(() => window.playground.monitor('qom-get /objects/shm0 mem-path')), /"?\/dev\/shm\/ram0"?/);
    assert.match(await page.evaluate(() => window.playground.monitor('qom-get /machine memory-backend')), /shm0/);
    const planted = await plant(page);
    const serialFrom = await page.evaluate(() => window.playground.serialOffset());
    const result = await typeCprExec(page, 'cpr-exec-args');
    log(`proposal's live update: ${JSON.stringify(result)}`);
    assert.equal(result.to, 'qemu-system-arm@v2');
    await monitorType(page, 'info status');
    await waitForTerminal(page, 'monitor', (l) => l.includes('VM status: running'), 60_000);
    assert.match(await page.evaluate(() => window.playground.monitor('info version')), /10\.2\.2 \(cpr-playground v2\)/);
    await page.click('#tab-serial');
    await assertContinuity(page, planted, serialFrom);
  });

  it('guest RAM in a shared file outside /dev/shm is kept too (it was lost: issue 15)', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    // A file in QEMU's ordinary file system, mapped shared: before the fix
    // its mapping was a heap copy that the exec cleared, the update said
    // "done" and the guest never answered again.
    const page = await bootArm(['-object', 'memory-backend-file,id=ramf,size=128M,mem-path=/tmp/ramf,share=on',
      '-machine', 'memory-backend=ramf']);
    assert.match(await page.evaluate(() => window.playground.monitor('qom-get /machine memory-backend')), /ramf/);
    const planted = await plant(page);
    const serialFrom = await page.evaluate(() => window.playground.serialOffset());
    const r = await within(300_000, 'the live update', page.evaluate(() => window.playground.liveUpdate('v2')));
    log(`file-backed RAM update: ${JSON.stringify(r)}`);
    assert.equal(r.to, 'qemu-system-arm@v2');
    await assertContinuity(page, planted, serialFrom);
  });

  it('liveUpdate() back and forth 10 times, the guest counting on', { timeout: BOOT_TIMEOUT_MS + 1_800_000 }, async () => {
    const page = await bootArm();
    let last = await plant(page);
    const serialFrom = await page.evaluate(() => window.playground.serialOffset());
    const pauses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const target = i % 2 === 0 ? 'v2' : 'v1';
      const r = await within(300_000, `live update ${i + 1}`, page.evaluate((t) => window.playground.liveUpdate(t), target));
      log(`update ${i + 1}: ${JSON.stringify(r)}`);
      assert.equal(r.route, 'cpr-exec');
      assert.equal(r.to, `qemu-system-arm@${target}`);
      assert.ok(r.pauseMs > 0 && Object.values(r.phases).every((ms) => ms >= 0));
      pauses.push(r.pauseMs);
      assert.equal(await page.evaluate(() => window.playground.status().state), 'running');
      assert.equal(await page.evaluate(() => window.playground.status().build), `qemu-system-arm@${target}`);
      assert.match(await page.evaluate(() => window.playground.monitor('info version')), new RegExp(`\\(cpr-playground ${target}\\)`));
      last = await assertContinuity(page, last, serialFrom);
    }
    log(`pauses: ${pauses.join(' ')} ms`);
  });

  // The other guests: i386 (pc), and x86_64 and aarch64, whose QEMU is a
  // wasm64 build running the interpreter. v1 → v2 → v1, the shell's
  // history kept across both.
  for (const guest of ['i386', 'x86_64', 'aarch64'] as const) {
    it(`an ${guest} guest live-updates too, there and back`, { timeout: 2 * BOOT_TIMEOUT_MS + 600_000 }, async () => {
      const page = await openPage(shared.browser, shared.server.url, log);
      await page.evaluate((g) => window.playground.boot({ guest: g, ramMiB: 128, build: 'v1' }), guest);
      await waitForState(page, 'running', 2 * BOOT_TIMEOUT_MS);
      let facts = await plant(page);
      for (const to of ['v2', 'v1'] as const) {
        await shell(page, 'echo history-$((40+2))', /^history-42$/m);
        const serialFrom = await page.evaluate(() => window.playground.serialOffset());
        const r = await within(300_000, 'the live update', page.evaluate((b) => window.playground.liveUpdate(b), to));
        log(`${guest} update: ${JSON.stringify(r)}`);
        assert.equal(r.to, `qemu-system-${guest}@${to}`);
        assert.match(await page.evaluate(() => window.playground.monitor('info version')), new RegExp(`10\\.2\\.2 \\(cpr-playground ${to}\\)`));
        // The same shell session: Up and Enter run the command typed last
        // before the update again.
        const from = await page.evaluate(() => window.playground.serialOffset());
        await page.evaluate(() => window.playground.sendSerial('\x1b[A\r'));
        await within(130_000, 'the command from history', page.evaluate((f) => window.playground.waitForSerial(/^history-42$/m, 120_000, { from: f }), from));
        facts = await assertContinuity(page, facts, serialFrom);
      }
    });
  }

  it('the page control updates to the picked build and shows the pause', { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm();
    const options = await page.locator('#update-build option').allTextContents();
    assert.deepEqual(options, ['qemu-system-arm@v2']);
    await page.click('#update');
    await page.waitForFunction(() => /guest paused \d+ ms/.test(document.querySelector('#update-result')?.textContent ?? ''), null, { timeout: 300_000 });
    assert.equal(await page.evaluate(() => window.playground.status().build), 'qemu-system-arm@v2');
    // Downgrade: the picker now offers v1.
    assert.deepEqual(await page.locator('#update-build option').allTextContents(), ['qemu-system-arm@v1']);
    await page.click('#update');
    await page.waitForFunction(() => /@v2 → qemu-system-arm@v1: guest paused/.test(document.querySelector('#update-result')?.textContent ?? ''), null, { timeout: 300_000 });
    // The live pause chart: a bar per update, by phase, and the same numbers in the API.
    assert.equal(await page.locator('#pause-chart').isVisible(), true);
    const updates = await page.evaluate(() => window.playground.liveUpdates());
    assert.equal(updates.length, 2);
    assert.ok((await page.locator("#pause-chart svg text", { hasText: `${updates[1]!.pauseMs} ms` }).count()) >= 1);
    assert.equal(await page.locator('#pause-chart svg rect title').count(), 12);
    await shell(page, 'echo still-$((3*3))', /^still-9$/m);
  });
});
