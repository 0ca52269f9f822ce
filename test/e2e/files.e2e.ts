// Runs in Node (node:test): files in and out of the guest end to end in
// Debian's Chromium, with the real QEMU builds, the real guest and its
// cpr-files agent (worker/files.ts, wasm/guest/cpr-files): put and get
// through the API and through the page's controls, bad input refused with
// the guest running on, and transfers that span a live update.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { BOOT_TIMEOUT_MS, e2eLog, sharedBrowser, liveUpdateUnavailable, openPage, waitForState, within, guestShell as shell } from './harness';

const shared = sharedBrowser();
const log = e2eLog;
const MiB = 1024 * 1024;

async function bootArm(): Promise<Page> {
  const page = await openPage(shared.browser, shared.server.url, log);
  await page.evaluate(() => window.playground.boot({ guest: 'arm', ramMiB: 128, build: 'v1' }));
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  await shell(page, 'echo up-$((1+1))', /^up-2$/m);
  return page;
}

/** Puts `size` bytes of a fixed pseudo-random sequence (seeded) at `path`
 * from the page; resolves with the size the guest reported and the
 * bytes' sha256, without sending the bytes through Node. */
function putPattern(page: Page, path: string, size: number, seed: number): Promise<{ size: number; sha: string }> {
  return page.evaluate(
    async ({ path, size, seed }) => {
      const bytes = new Uint8Array(size);
      let x = seed >>> 0 || 1;
      for (let i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        bytes[i] = x & 0xff;
      }
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      const sha = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
      return { size: await window.playground.putFile(path, bytes), sha };
    },
    { path, size, seed },
  );
}

/** The sha256 and size of a guest file, read with getFile() in the page. */
function getDigest(page: Page, path: string): Promise<{ size: number; sha: string }> {
  return page.evaluate(async (path) => {
    const bytes = await window.playground.getFile(path);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
    return { size: bytes.length, sha: [...digest].map((b) => b.toString(16).padStart(2, '0')).join('') };
  }, path);
}

async function guestSha(page: Page, path: string): Promise<string> {
  return (await shell(page, `sha256sum ${path}`, /^[0-9a-f]{64}(?=\s)/m, 300_000)).trim();
}

describe('files in and out of the guest', { timeout: 60 * 60_000, skip: liveUpdateUnavailable() }, () => {
  it('puts and gets files; both survive live updates, even mid-transfer', { timeout: BOOT_TIMEOUT_MS + 900_000 }, async () => {
    const page = await bootArm();
    const small = await putPattern(page, '/root/notes/before update.txt', 4096, 7);
    assert.equal(small.size, 4096);
    assert.equal(await guestSha(page, "'/root/notes/before update.txt'"), small.sha);

    // A put still flowing into the guest when the update stops the VM:
    // the bytes QEMU had not read go to the next QEMU (console-input.ts).
    const putting = putPattern(page, '/tmp/big.bin', 24 * MiB, 99);
    await new Promise((r) => setTimeout(r, 1500));
    const update = await page.evaluate(() => window.playground.liveUpdate('v2'));
    log(`update during a put: ${JSON.stringify(update)}`);
    assert.equal(update.to, 'qemu-system-arm@v2');
    const big = await within(600_000, 'the put across the update', putting);
    assert.equal(big.size, 24 * MiB);
    assert.equal(await guestSha(page, '/tmp/big.bin'), big.sha, 'the guest has every byte, in order');
    assert.deepEqual(await getDigest(page, '/root/notes/before update.txt'), small);

    // A get in flight when the VM stops: the guest's port buffers are guest
    // RAM, which the update keeps.
    const getting = getDigest(page, '/tmp/big.bin');
    await new Promise((r) => setTimeout(r, 500));
    const back = await page.evaluate(() => window.playground.liveUpdate('v1'));
    log(`update during a get: ${JSON.stringify(back)}`);
    assert.deepEqual(await within(600_000, 'the get across the update', getting), big);
    await page.context().close();
  });

  it("refuses bad paths and sizes with the reason; the guest's errors come back; the guest runs on", { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm();
    // No named functions in here: tsx would wrap them in a helper the page lacks.
    const settled = await page.evaluate(async () => {
      const pg = window.playground;
      const results = await Promise.allSettled([
        pg.putFile('relative.txt', new Uint8Array(1)),
        pg.putFile('/tmp/huge', new Uint8Array(64 * 1024 * 1024 + 1)),
        pg.getFile('/no/such/file'),
        pg.getFile('/root'),
        pg.putFile('/proc/nope/x', new Uint8Array(3)),
      ]);
      return results.map((r) => (r.status === 'fulfilled' ? 'ok' : `${(r.reason as { code?: string }).code}: ${(r.reason as { message?: string }).message}`));
    });
    const [relative, oversize, missing, directory, unwritable] = settled as [string, string, string, string, string];
    const errors = { relative, oversize, missing, directory, unwritable };
    log(`errors: ${JSON.stringify(errors)}`);
    assert.match(errors.relative, /^bad-options: putFile: the path must be absolute/);
    assert.match(errors.oversize, /^bad-options: .*limit is 67108864 \(64 MiB\)/);
    assert.equal(errors.missing, 'file-failed: getFile /no/such/file: no such file');
    assert.equal(errors.directory, 'file-failed: getFile /root: not a regular file');
    assert.match(errors.unwritable, /^file-failed: putFile \/proc\/nope\/x: mkdir: can't create directory/);
    assert.equal(await page.evaluate(() => window.playground.status().state), 'running');
    await shell(page, 'echo still-$((6*7))', /^still-42$/m);
    await page.context().close();
  });

  it("the page's controls: Put file…, a dropped file, Download from guest", { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const page = await bootArm();
    const text = 'hello from the host\nline two\n';
    await page.setInputFiles('#put-file', { name: 'greeting.txt', mimeType: 'text/plain', buffer: Buffer.from(text) });
    await page.waitForFunction(() => document.querySelector('#file-result')?.textContent?.startsWith('put /root/greeting.txt'), undefined, { timeout: 120_000 });
    await shell(page, 'wc -l < /root/greeting.txt', /^2$/m);

    // A file dropped on the page goes to /root too (a .cprsnap would be restored).
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped bytes'], 'dropped.txt'));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => document.querySelector('#file-result')?.textContent?.startsWith('put /root/dropped.txt'), undefined, { timeout: 120_000 });
    await shell(page, 'cat /root/dropped.txt; echo', /^dropped bytes$/m);

    await page.fill('#get-path', '/root/greeting.txt');
    const download = page.waitForEvent('download', { timeout: 120_000 });
    await page.click('#get-file');
    const file = await (await download).path();
    assert.equal(readFileSync(file, 'utf8'), text);
    assert.equal((await download).suggestedFilename(), 'greeting.txt');
    assert.match((await page.locator('#file-result').textContent()) ?? '', /^downloaded \/root\/greeting\.txt/);
    log(`downloaded sha ${createHash('sha256').update(readFileSync(file)).digest('hex')}`);
    await page.context().close();
  });
});
