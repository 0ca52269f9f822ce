// Runs in Node (node:test): the guided tours in Debian's Chromium, with the
// real QEMU and guest, clicked through to their ends as a visitor would:
// Run types each step's line into its console and checks the result; Next
// is offered only after the check passed. A deep link opens a step, and a
// step that cannot work yet says why.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { counterCountsOn } from './guest-facts';
import { BOOT_TIMEOUT_MS, clickThroughTour, e2eLog, liveUpdateUnavailable, openPage, runTourStep, sharedBrowser } from './harness';

const shared = sharedBrowser();
const log = e2eLog;

describe('guided tours', { timeout: 60 * 60_000, skip: liveUpdateUnavailable() }, () => {
  it('the live-update tour, clicked through to its end: the build changes, the counter counts on, the pause is read', { timeout: BOOT_TIMEOUT_MS + 900_000 }, async () => {
    const page = await openPage(shared.browser, shared.server.url, log);
    await page.click('#tour-live');
    assert.equal(await page.textContent('#tour-progress'), 'Step 1 of 9');
    assert.equal(await page.isDisabled('#tour-next'), true, 'Next waits for the step\'s check');
    const texts = await clickThroughTour(page, 9);
    assert.match(texts.at(-1)!, /qemu-system-arm@v1 → qemu-system-arm@v2: the guest paused \d+ ms/);
    const s = await page.evaluate(() => window.playground.status());
    assert.equal(s.build, 'qemu-system-arm@v2');
    // Typed visibly: the monitor tab shows the tour's commands as typed.
    assert.match(await page.evaluate(() => document.querySelector('#monitor')?.textContent ?? ''), /migrate -d file:vm\.state/);
    // The counter the tour started before the update counts on after it.
    await counterCountsOn(page);
  });

  it('the refusal tour: QEMU refuses private RAM and the guest runs on', { timeout: BOOT_TIMEOUT_MS + 600_000 }, async () => {
    const page = await openPage(shared.browser, shared.server.url, log);
    await page.click('#tour-refusal');
    await clickThroughTour(page, 4);
    assert.equal(await page.evaluate(() => window.playground.status().build), 'qemu-system-arm@v1');
  });

  it('a deep link opens a step; a step that cannot work yet says why and can be retried', { timeout: 120_000 }, async () => {
    const page = await openPage(shared.browser, `${shared.server.url}?tour=live-update&step=4`, log);
    assert.equal(await page.isVisible('#tour'), true);
    assert.equal(await page.textContent('#tour-progress'), 'Step 4 of 9');
    const r = await runTourStep(page);
    assert.equal(r.result, 'failed');
    assert.match(r.text, /QEMU is not running|boot/i);
    assert.equal(await page.isDisabled('#tour-run'), false, 'Run is offered again');
    assert.equal(await page.isDisabled('#tour-next'), true);
    await page.click('#tour-close');
    assert.equal(await page.isVisible('#tour'), false);
  });
});
