// Runs in Node (node:test): snapshots end to end in Debian's Chromium, with
// the real QEMU builds and the real guest (issue 13): save a running VM to
// a file with the page's button, open it again with the file picker (on
// another build), the guest's processes and files intact; and every bad
// file refused with its reason while the running guest runs on.
// Nothing here asserts on timing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { readSnapshot, writeSnapshot } from '../../worker/snapshot';
import { BOOT_TIMEOUT_MS, e2eLog, sharedBrowser, liveUpdateUnavailable, openPage, waitForState, within, guestShell as shell } from './harness';

const shared = sharedBrowser();
const log = e2eLog;

async function bootArm(): Promise<Page> {
  const page = await openPage(shared.browser, shared.server.url, log);
  await page.evaluate(() => window.playground.boot({ guest: 'arm', ramMiB: 128, build: 'v1' }));
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  return page;
}

/** Saves with the page's button; returns the downloaded file's bytes. */
async function saveWithButton(page: Page): Promise<Buffer> {
  const download = page.waitForEvent('download', { timeout: 300_000 });
  await page.click('#save-snapshot');
  const file = await (await download).path();
  await page.waitForFunction(() => /saved \(/.test(document.querySelector('#snapshot-result')?.textContent ?? ''), null, { timeout: 60_000 });
  return readFileSync(file);
}

/** Opens a file with the page's picker; resolves with the error shown, if any. */
async function openWithPicker(page: Page, name: string, bytes: Buffer): Promise<void> {
  await page.setInputFiles('#open-snapshot', { name, mimeType: 'application/octet-stream', buffer: bytes });
}

async function refusedInPage(page: Page, name: string, bytes: Buffer, reason: RegExp): Promise<void> {
  await openWithPicker(page, name, bytes);
  await page.waitForFunction(() => !document.querySelector('#error')?.hasAttribute('hidden'), null, { timeout: 60_000 });
  assert.equal(await page.locator('#error-code').textContent(), 'bad-snapshot');
  assert.match((await page.locator('#error-message').textContent()) ?? '', reason);
  await page.click('#error-close');
}

describe('snapshots', { timeout: 60 * 60_000, skip: liveUpdateUnavailable() }, () => {
  it('Start: the page restores the booted snapshot, the shell and monitor answer, and live update works right after', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    for (const guest of ['arm', 'i386', 'x86_64', 'aarch64'] as const) {
      const page = await openPage(shared.browser, shared.server.url, log);
      await page.selectOption('#guest', guest);
      const t0 = Date.now();
      await page.click('#start');
      await waitForState(page, 'running', BOOT_TIMEOUT_MS);
      const answer = await shell(page, 'echo ANSWER=$((6*7))', /^ANSWER=\d+$/m);
      log(`${guest}: Start → the shell answered after ${Date.now() - t0} ms (${answer})`);
      assert.equal(answer, 'ANSWER=42');
      // Restored, not booted: the serial shows no boot log, only the prompt
      // asked for and the answer.
      assert.doesNotMatch(await page.evaluate(() => window.playground.serialText(0)), /Booting Linux|Linux version/);
      assert.match(await page.evaluate(() => window.playground.monitor('info status')), /VM status: running/);
      const argv = await page.evaluate(() => window.playground.status().argv.join(' '));
      assert.match(argv, /aux-ram-share=on/);
      // arm, and x86_64 and aarch64 on their wasm64 build.
      if (guest !== 'i386') {
        const r = await page.evaluate(() => window.playground.liveUpdate('v2'));
        log(`${guest}: live update after Start: ${r.pauseMs} ms`);
        assert.equal(r.to, `qemu-system-${guest}@v2`);
        assert.equal(await shell(page, 'echo AGAIN=$((7*8))', /^AGAIN=\d+$/m), 'AGAIN=56');
      }
      await page.close();
    }
  });

  it('Save, then Open on another build: the same processes, files and clock; live update works after it', { timeout: BOOT_TIMEOUT_MS + 900_000 }, async () => {
    const page = await bootArm();
    const pid = Number((await shell(page, 'counter /tmp/counter >/dev/null 2>&1 & echo PID=$!', /^PID=\d+$/m)).slice(4));
    await shell(page, 'head -c 1048576 /dev/urandom > /tmp/random; echo planted', /^planted$/m);
    const sha = (await shell(page, 'sha256sum /tmp/random', /^[0-9a-f]{64}(?=\s)/m)).trim();
    const upBefore = Number((await shell(page, 'echo UP=$(cut -d" " -f1 /proc/uptime)', /^UP=[\d.]+$/m)).slice(3));
    const file = await saveWithButton(page);
    log(`snapshot: ${file.length} bytes`);
    // Format 2: the device state, and guest RAM out of the live-update layout.
    assert.equal(file.subarray(0, 26).toString(), 'CPR-PLAYGROUND-SNAPSHOT 2\n');
    // The VM ran on through the save.
    assert.equal(await page.evaluate(() => window.playground.status().state), 'running');

    // The downloaded file, opened with the page's picker: restored on the
    // build that saved it, the guest as it was.
    await openWithPicker(page, 'saved.cprsnap', file);
    await page.waitForFunction(() => /restored saved\.cprsnap on qemu-system-arm@v1/.test(document.querySelector('#snapshot-result')?.textContent ?? ''), null, { timeout: 400_000 });
    const facts = async (): Promise<void> => {
      const alive = await shell(page, `kill -0 ${pid} && echo ALIVE-${pid} || echo DEAD-${pid}`, new RegExp(`^(ALIVE|DEAD)-${pid}$`, 'm'));
      assert.equal(alive, `ALIVE-${pid}`, 'the counter process runs on in the restored VM');
      assert.equal((await shell(page, 'sha256sum /tmp/random', /^[0-9a-f]{64}(?=\s)/m)).trim(), sha);
      const upAfter = Number((await shell(page, 'echo UP=$(cut -d" " -f1 /proc/uptime)', /^UP=[\d.]+$/m)).slice(3));
      assert.ok(upAfter > upBefore, `the guest's clock went on from the save (${upBefore} → ${upAfter}), it did not boot again`);
    };
    await facts();

    // Saved by v1 through the API, restored on v2: the builds read each
    // other's state, as live update relies on.
    const info = await page.evaluate(async () => {
      const w = window as unknown as { snap: Blob };
      w.snap = await window.playground.saveSnapshot();
      return window.playground.checkSnapshot(w.snap);
    });
    assert.deepEqual({ guest: info.guest, build: info.build, ramMiB: info.ramMiB }, { guest: 'arm', build: 'qemu-system-arm@v1', ramMiB: 128 });
    const s = await within(400_000, 'the restore on v2', page.evaluate(() => window.playground.restoreSnapshot((window as unknown as { snap: Blob }).snap, { build: 'v2' })));
    assert.equal(s.state, 'running');
    assert.equal(s.build, 'qemu-system-arm@v2');
    assert.match(await page.evaluate(() => window.playground.monitor('info version')), /\(cpr-playground v2\)/);
    await facts();
    const r = await within(300_000, 'a live update after the restore', page.evaluate(() => window.playground.liveUpdate('v1')));
    assert.equal(r.to, 'qemu-system-arm@v1');
    await facts();
  });

  it('Keep this VM, reload the page, Resume kept VM: the guest as it was; Forget clears it', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    const page = await bootArm();
    await shell(page, 'echo KEPT-$((6*7)) > /tmp/kept; echo written', /^written$/m);
    await page.click('#keep-vm');
    await page.waitForFunction(() => /kept VM: /.test(document.querySelector('#kept-vm')?.textContent ?? ''), null, { timeout: 300_000 });
    await page.reload();
    await page.waitForFunction(() => typeof window.playground === 'object');
    await page.waitForSelector('#resume-vm:not([hidden])', { timeout: 30_000 });
    await page.click('#resume-vm');
    await waitForState(page, 'running', BOOT_TIMEOUT_MS);
    assert.match(await shell(page, 'cat /tmp/kept', /^KEPT-42$/m), /KEPT-42/);
    await page.click('#forget-vm');
    await page.waitForSelector('#resume-vm', { state: 'hidden', timeout: 30_000 });
    assert.equal(await page.locator('#kept-vm').textContent(), '');
  });

  it('bad files are refused with the reason before the running guest is touched; QEMU\'s own loader fails cleanly', { timeout: BOOT_TIMEOUT_MS + 900_000 }, async () => {
    const page = await bootArm();
    await shell(page, 'echo KEEP > /tmp/keep; echo kept', /^kept$/m);
    const file = await saveWithButton(page);
    const flipped = Buffer.from(file);
    flipped[flipped.length - 1000]! ^= 0x10;
    const otherGuest = Buffer.from(file.toString('latin1').replace('"guest":"arm"', '"guest":"riscv"'), 'latin1');
    await refusedInPage(page, 'truncated.cprsnap', file.subarray(0, file.length - 4096), /truncated/);
    await refusedInPage(page, 'flipped.cprsnap', flipped, /does not match its sha256/);
    await refusedInPage(page, 'notes.txt', Buffer.from('just some text\n'), /magic line/);
    await refusedInPage(page, 'riscv.cprsnap', otherGuest, /guest "riscv"/);
    const bigRam = Buffer.from(file.toString('latin1').replace('"ramMiB":128', '"ramMiB":4096'), 'latin1');
    await refusedInPage(page, 'big.cprsnap', bigRam, /cannot give the snapshot's RAM/);
    const otherBuild = Buffer.from(file.toString('latin1').replace('"build":"qemu-system-arm@v1"', '"build":"qemu-system-arm@v9"'), 'latin1');
    await refusedInPage(page, 'v9.cprsnap', otherBuild, /unknown build .*v9/);
    // After all of that, the same guest runs on.
    assert.equal(await page.evaluate(() => window.playground.status().state), 'running');
    assert.match(await shell(page, 'cat /tmp/keep', /^KEEP$/m), /KEEP/);

    // Files whose header and checksum are right but whose QEMU state is
    // not QEMU's: a whole stream (format 1), and a device state beside the
    // saved RAM image (format 2). QEMU's own loader refuses each, and the
    // page says so.
    const saved = await readSnapshot(new Uint8Array(file));
    assert.ok(saved.image, 'the page saves format 2: a RAM image beside the device state');
    const junkState = (): Uint8Array => new Uint8Array(65536).map(() => Math.floor(Math.random() * 256));
    const junkInfo = { guest: 'arm' as const, build: 'qemu-system-arm@v1', ramMiB: 128, argv: saved.info.argv };
    for (const [what, junk] of [
      ['a junk stream', await writeSnapshot(junkInfo, { state: junkState() })],
      ['a junk device state with the RAM image', await writeSnapshot(junkInfo, { state: junkState(), image: saved.image })],
    ] as const) {
      const err = await within(400_000, `restoring ${what}`, page.evaluate(async (bytes) => {
        try {
          await window.playground.restoreSnapshot(new Uint8Array(bytes));
          return { code: 'resolved', message: '' };
        } catch (e) {
          const x = e as { code?: string; message?: string };
          return { code: x.code ?? 'none', message: x.message ?? String(e) };
        }
      }, [...new Uint8Array(await junk.arrayBuffer())]));
      log(`${what}: ${JSON.stringify(err)}`);
      assert.ok(err.code === 'snapshot-failed' || err.code === 'qemu-exited', `QEMU refuses ${what}: ${JSON.stringify(err)}`);
      assert.match(err.message, /qemu-system-arm: .*(migration|load|stream|Not a migration)/i);
    }
    // Nothing hangs: the page can boot again.
    await page.evaluate(() => window.playground.boot({ guest: 'arm', ramMiB: 128, build: 'v1' }));
    await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  });
});
