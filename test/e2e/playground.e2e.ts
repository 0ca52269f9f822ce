// Runs in Node (node:test): end-to-end tests of the playground page in
// Debian's Chromium, against the real QEMU wasm builds and guest images.
// Boots take tens of seconds under TCI in wasm: every wait is generous and
// nothing asserts on timing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { BOOT_TIMEOUT_MS, e2eLog, sharedBrowser, openPage, waitForState, waitForTerminal, within } from './harness';

const shared = sharedBrowser();
const log = e2eLog;

async function fresh(): Promise<Page> {
  return openPage(shared.browser, shared.server.url, log);
}

async function errorPanel(page: Page, timeoutMs: number): Promise<{ code: string; message: string }> {
  await page.locator('#error').waitFor({ state: 'visible', timeout: timeoutMs });
  return {
    code: (await page.locator('#error-code').textContent()) ?? '',
    message: (await page.locator('#error-message').textContent()) ?? '',
  };
}

describe('playground page', { timeout: 30 * 60_000 }, () => {
  it('boots the arm guest from the page, answers in the terminal and the monitor', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
    const page = await fresh();
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
    await page.selectOption('#guest', 'arm');
    await page.fill('#ram', '128');
    await page.click('#boot');
    await waitForState(page, 'running', BOOT_TIMEOUT_MS);
    log('step: running');
    await waitForTerminal(page, 'serial', (l) => l.includes('cpr-playground guest ready'), 10_000);
    log('step: ready line on the terminal');

    // Type into the terminal like a person and read the answer off it.
    await waitForTerminal(page, 'serial', (l) => l.trimEnd().endsWith('#'), 60_000);
    log('step: typing into the serial terminal');
    await page.click('#serial');
    await within(60_000, 'typing', page.keyboard.type('echo $((6*7))'));
    await within(60_000, 'pressing Enter', page.keyboard.press('Enter'));
    log('step: waiting for 42');
    await waitForTerminal(page, 'serial', (l) => l.trim() === '42', 60_000);
    log('step: 42 seen');

    // The monitor tab is a real HMP console.
    await page.click('#tab-monitor');
    await waitForTerminal(page, 'monitor', (l) => l.startsWith('(qemu)'), 30_000);
    await page.click('#monitor');
    await within(60_000, 'typing', page.keyboard.type('info status'));
    await within(60_000, 'pressing Enter', page.keyboard.press('Enter'));
    await waitForTerminal(page, 'monitor', (l) => l.includes('VM status: running'), 30_000);

    // The same through window.playground.
    const status = await page.evaluate(() => window.playground.status());
    assert.equal(status.state, 'running');
    assert.equal(status.build, 'qemu-system-arm@v1');
    assert.equal(status.ramMiB, 128);
    assert.equal(status.argv[0], 'qemu-system-arm');
    assert.match(await page.evaluate(() => window.playground.monitor('info version')), /10\.2\.2/);
    assert.match(await page.locator('#st-argv').textContent() ?? '', /qemu-system-arm .*-m 128/);

    // Pausing from the monitor shows in the status.
    // QEMU's own answer is the check; the status bar follows it.
    await page.evaluate(() => window.playground.monitor('stop'));
    assert.match(await page.evaluate(() => window.playground.monitor('info status')), /VM status: paused/);
    await page.evaluate(() => window.playground.monitor('cont'));
    assert.match(await page.evaluate(() => window.playground.monitor('info status')), /VM status: running/);
    await page.evaluate(() => window.playground.stop());
    await waitForState(page, 'stopped', 30_000);
    await page.context().close();
  });

  // `info mtree` frees lists with g_list_free_full(): it trapped QEMU until
  // glib stopped calling destroy functions through (GFunc) casts
  // (wasm/deps-patches/glib-free-full-no-gfunc-cast.patch).
  it('answers info mtree from the monitor', {
    timeout: BOOT_TIMEOUT_MS + 120_000,
  }, async () => {
    const page = await fresh();
    const status = await page.evaluate((t) => window.playground.boot({ guest: 'arm', ramMiB: 128, bootTimeoutMs: t }), BOOT_TIMEOUT_MS);
    assert.equal(status.state, 'running');
    try {
      assert.match(await page.evaluate(() => window.playground.monitor('info mtree')), /address-space/);
    } finally {
      await page.context().close();
    }
  });

  it('boots the i386 guest through window.playground', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
    const page = await fresh();
    const status = await page.evaluate((t) => window.playground.boot({ guest: 'i386', ramMiB: 128, bootTimeoutMs: t }), BOOT_TIMEOUT_MS);
    assert.equal(status.state, 'running');
    assert.equal(status.build, 'qemu-system-i386@v1');
    const answer = await page.evaluate(async () => {
      const from = window.playground.serialOffset();
      await window.playground.sendSerial('echo $((6*7))\n');
      return window.playground.waitForSerial(/^42$/m, 60_000, { from });
    });
    assert.equal(answer, '42');
    assert.match(await page.evaluate(() => window.playground.monitor('info status')), /VM status: running/);
    await page.evaluate(() => window.playground.stop());
    await page.context().close();
  });

  it('a deep link boots the guest it names and types its commands; a bad one says what is wrong', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
    const page = await openPage(shared.browser, `${shared.server.url}?guest=i386&ram=160&build=v2&boot&type=${encodeURIComponent('echo deep-$((6*7))')}`, log);
    await waitForState(page, 'running', BOOT_TIMEOUT_MS);
    const s = await page.evaluate(() => window.playground.status());
    assert.equal(s.guest, 'i386');
    assert.equal(s.ramMiB, 160);
    assert.equal(s.build, 'qemu-system-i386@v2');
    await within(130_000, 'the typed command', page.evaluate(() => window.playground.waitForSerial(/^deep-42\r?$/m, 120_000)));
    const bad = await openPage(shared.browser, `${shared.server.url}?guest=riscv&boot`, log);
    const err = await errorPanel(bad, 60_000);
    assert.equal(err.code, 'bad-options');
    assert.match(err.message, /riscv/);
  });

  it('advanced panel: extra QEMU arguments reach QEMU; a bad one shows QEMU\'s own error and the page boots again', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
    const page = await fresh();
    await page.click('#advanced summary');
    await page.fill('#extra-args', '-name "unclosed');
    await page.click('#start');
    let shown = await errorPanel(page, 10_000);
    assert.deepEqual(shown.code, 'bad-options');
    assert.match(shown.message, /double quote .* not closed/);
    await page.click('#error-close');

    await page.fill('#extra-args', '-device no-such-device');
    await page.click('#start');
    shown = await errorPanel(page, BOOT_TIMEOUT_MS);
    log(`bad extra argument: ${shown.code}: ${shown.message}`);
    assert.match(shown.message, /qemu-system-arm: -device no-such-device: '?no-such-device'? is not a valid device model name/);
    await page.click('#error-close');

    await page.fill('#extra-args', "-name 'demo vm'");
    await page.click('#start');
    // The failed boot's 'error' stays until the old worker is stopped and
    // the new boot reports (seconds on a loaded machine): not this boot's.
    await page.waitForFunction(() => window.playground.status().state !== 'error', undefined, { timeout: 60_000, polling: 100 });
    await waitForState(page, 'running', BOOT_TIMEOUT_MS);
    const argv = await page.evaluate(() => window.playground.status().argv);
    assert.deepEqual(argv.slice(-2), ['-name', 'demo vm'], 'appended after the guest\'s own arguments');
    assert.match(await page.evaluate(() => window.playground.monitor('info name')), /demo vm/);
  });

  it('explains a page without cross-origin isolation', async () => {
    const context = await shared.browser.newContext();
    const page = await context.newPage();
    // Serve the page itself without COOP/COEP.
    await page.route(shared.server.url, async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers() };
      delete headers['cross-origin-opener-policy'];
      delete headers['cross-origin-embedder-policy'];
      await route.fulfill({ response, headers });
    });
    await page.goto(shared.server.url);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
    const warning = page.locator('#isolation');
    await warning.waitFor({ state: 'visible', timeout: 30_000 });
    assert.match((await warning.textContent()) ?? '', /Cross-Origin-Embedder-Policy: require-corp/);
    await page.click('#boot');
    const err = await errorPanel(page, 30_000);
    assert.equal(err.code, 'not-isolated');
    await context.close();
  });

  it('shows a visible error for a missing wasm', async () => {
    const page = await fresh();
    await page.context().route('**/qemu-system-arm.wasm*', (route) => route.fulfill({ status: 404, body: 'gone' }));
    await page.click('#boot');
    const err = await errorPanel(page, 120_000);
    assert.equal(err.code, 'load-failed');
    assert.match(err.message, /qemu-system-arm\.wasm(\?v=\w+)?: HTTP 404/);
    await page.context().close();
  });

  it('shows a visible error for a corrupt wasm', async () => {
    const page = await fresh();
    // Right magic, garbage after it: only compiling it can tell.
    const body = Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), Buffer.alloc(4096, 0xff)]);
    await page.context().route('**/qemu-system-arm.wasm*', (route) =>
      route.fulfill({ status: 200, body, headers: { 'content-type': 'application/wasm' } }),
    );
    await page.click('#boot');
    const err = await errorPanel(page, 120_000);
    assert.equal(err.code, 'load-failed');
    assert.match(err.message, /failed to start|CompileError|wasm/i);
    assert.equal(await page.locator('#st-state').getAttribute('data-state'), 'error');
    await page.context().close();
  });

  it('rejects an invalid RAM size with a visible error', async () => {
    const page = await fresh();
    await page.fill('#ram', '100');
    await page.click('#boot');
    const err = await errorPanel(page, 30_000);
    assert.equal(err.code, 'bad-options');
    assert.match(err.message, /invalid RAM size 100 MiB/);
    const code = await page.evaluate(() => window.playground.boot({ ramMiB: 4096 }).then(() => 'booted', (e: { code: string }) => e.code));
    assert.equal(code, 'bad-options');
    await page.context().close();
  });

  it('reports boot-timeout for a guest that never reaches its prompt', { timeout: 300_000 }, async () => {
    const page = await fresh();
    // -S: QEMU starts with its CPUs stopped, so the guest never boots.
    const result = await page.evaluate(() =>
      window.playground.boot({ guest: 'arm', extraArgs: ['-S'], bootTimeoutMs: 15_000 }).then(
        () => 'booted',
        (e: { code: string; message: string }) => `${e.code}: ${e.message}`,
      ),
    );
    assert.match(result, /^boot-timeout: /);
    const err = await errorPanel(page, 10_000);
    assert.equal(err.code, 'boot-timeout');
    assert.match(err.message, /did not reach its shell/);
    await page.context().close();
  });
});
