// Runs in Node (node:test): the playground in Debian's Firefox ESR, with
// the real QEMU builds and guest, so that a browser other than Chromium is
// covered: the live-update tour clicked through to its end, a deep link,
// and a live update through liveUpdate(). The Chromium files test the same
// features at length; these check that they work in Firefox at all.
// Firefox runs headless with no remote protocol; a driver page clicks and
// evaluates in the playground for the test (firefox.ts says why). Nothing
// here asserts on timing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { launchFirefox, type FirefoxPage } from './firefox';
import { assertContinuity, counterCountsOn, plant } from './guest-facts';
import {
  BOOT_TIMEOUT_MS,
  clickThroughTour,
  e2eLog as log,
  guestShell as shell,
  liveUpdateUnavailable,
  runTourStep,
  sharedBrowser,
  textOf,
  waitForState,
  within,
} from './harness';

const shared = sharedBrowser((server) => launchFirefox(server, log));

async function open(query = ''): Promise<FirefoxPage> {
  const ff = await shared.browser.open(`${shared.server.url}${query}`);
  // SharedArrayBuffer, which QEMU's threads and the live update need.
  assert.equal(await ff.evaluate(() => self.crossOriginIsolated, null), true, 'the playground is cross-origin isolated in Firefox');
  return ff;
}

describe('Firefox', { timeout: 30 * 60_000, skip: liveUpdateUnavailable() }, () => {
  it('the live-update tour, clicked through to its end: the other build runs and the counter counts on', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    const ff = await open();
    await ff.click('#tour-live');
    assert.equal(await textOf(ff, '#tour-progress'), 'Step 1 of 9');
    const texts = await clickThroughTour(ff, 9);
    assert.match(texts.at(-1)!, /qemu-system-arm@v1 → qemu-system-arm@v2: the guest paused \d+ ms/);
    const s = await ff.evaluate(() => window.playground.status(), null);
    assert.equal(s.state, 'running');
    assert.equal(s.build, 'qemu-system-arm@v2');
    assert.match(await ff.evaluate(() => window.playground.monitor('info version'), null), /10\.2\.2 \(cpr-playground v2\)/);
    // The counter the tour started before the update counts on after it.
    await counterCountsOn(ff);
  });

  it('a deep link opens the guest, build and tour step it names and types its line', { timeout: BOOT_TIMEOUT_MS + 300_000 }, async () => {
    const ff = await open(`?guest=arm&build=v2&boot&tour=live-update&step=3&type=${encodeURIComponent('echo deep-$((6*7))')}`);
    assert.equal(await textOf(ff, '#tour-progress'), 'Step 3 of 9');
    assert.equal(await textOf(ff, '#tour-step-title'), 'Where guest RAM lives');
    await waitForState(ff, 'running', BOOT_TIMEOUT_MS);
    const s = await ff.evaluate(() => window.playground.status(), null);
    assert.equal(s.guest, 'arm');
    assert.equal(s.build, 'qemu-system-arm@v2');
    await within(130_000, 'the typed line', ff.evaluate(() => window.playground.waitForSerial(/^deep-42\r?$/m, 120_000), null));
    // The linked step runs on the guest the link booted.
    const r = await runTourStep(ff);
    assert.equal(r.result, 'ok', `the linked step failed: ${r.text}`);
  });

  it('a live update: the same shell session, counter and files on the new build', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    const ff = await open();
    // Start, as the page's button does: the guest's booted snapshot.
    await ff.click('#start');
    await waitForState(ff, 'running', BOOT_TIMEOUT_MS);
    assert.equal(await ff.evaluate(() => window.playground.status().build, null), 'qemu-system-arm@v1');
    const planted = await plant(ff);
    // A line to find again in the shell's history after the update.
    await shell(ff, 'echo history-$((40+2))', /^history-42$/m);

    const serialFrom = await ff.evaluate(() => window.playground.serialOffset(), null);
    const r = await within(300_000, 'the live update', ff.evaluate(() => window.playground.liveUpdate('v2'), null));
    log(`Firefox live update: ${JSON.stringify(r)}`);
    assert.equal(r.route, 'cpr-exec');
    assert.equal(r.to, 'qemu-system-arm@v2');
    assert.equal(await ff.evaluate(() => window.playground.status().build, null), 'qemu-system-arm@v2');
    assert.match(await ff.evaluate(() => window.playground.monitor('info version'), null), /10\.2\.2 \(cpr-playground v2\)/);

    // The same shell session: Up and Enter run the line typed before the
    // update again.
    await within(
      130_000,
      'the line from history',
      ff.evaluate(async () => {
        const pg = window.playground;
        const from = pg.serialOffset();
        await pg.sendSerial('\x1b[A\r');
        return pg.waitForSerial(/^history-42\r?$/m, 120_000, { from });
      }, null),
    );
    await assertContinuity(ff, planted, serialFrom);
  });
});
