// Runs in Node (node:test): the playground inside a tutorial's iframe, in
// Debian's Chromium, with the real QEMU (docs/tutorial.md, "Embedding";
// issue 14). The tutorial pages are answered by request routing with the
// headers the doc names; the playground is the dev server's. Same origin
// and another origin (localhost vs 127.0.0.1: two origins, one server).
// Without the iframe's allow="cross-origin-isolated" the playground says
// why it cannot start QEMU. Nothing here asserts on timing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { BOOT_TIMEOUT_MS, e2eLog as log, liveUpdateUnavailable, sharedBrowser } from './harness';

const shared = sharedBrowser();

const ISOLATING = {
  'Content-Type': 'text/html',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** A tutorial page at `tutorialUrl` embedding `playgroundUrl`; for another
 * origin the playground's page gets CORP cross-origin, as the doc says. */
async function tutorial(tutorialUrl: string, playgroundUrl: string, allow: boolean): Promise<{ page: Page; frame: Frame }> {
  const context = await shared.browser.newContext({ viewport: { width: 1400, height: 900 } });
  const crossOrigin = new URL(tutorialUrl).origin !== new URL(playgroundUrl).origin;
  await context.route(tutorialUrl, (route) =>
    route.fulfill({
      headers: ISOLATING,
      body: `<!doctype html><title>tutorial</title><h1>Live update, chapter 3</h1>
<iframe id="pg" src="${playgroundUrl}" ${allow ? 'allow="cross-origin-isolated"' : ''} width="1280" height="800"></iframe>`,
    }),
  );
  if (crossOrigin) {
    await context.route(playgroundUrl, async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, headers: { ...response.headers(), 'cross-origin-resource-policy': 'cross-origin' } });
    });
  }
  const page = await context.newPage();
  page.on('console', (m) => log(`[page ${m.type()}] ${m.text()}`));
  await page.goto(tutorialUrl);
  const frame = await (await page.waitForSelector('#pg')).contentFrame();
  if (!frame) throw new Error('the iframe has no frame');
  await frame.waitForFunction(() => typeof window.playground === 'object', null, { timeout: 60_000 });
  return { page, frame };
}

async function startsAndAnswers(frame: Frame): Promise<void> {
  assert.equal(await frame.evaluate(() => self.crossOriginIsolated), true, 'the embedded playground is cross-origin isolated');
  await frame.waitForFunction(() => window.playground.status().state === 'running', null, { timeout: BOOT_TIMEOUT_MS, polling: 250 });
  const answer = await frame.evaluate(async () => {
    const pg = window.playground;
    const from = pg.serialOffset();
    await pg.sendSerial('echo EMBEDDED=$((6*7))\n');
    return pg.waitForSerial(/EMBEDDED=\d+/, 60_000, { from });
  });
  assert.equal(answer, 'EMBEDDED=42');
}

describe('embedding in a tutorial page', { timeout: 30 * 60_000, skip: liveUpdateUnavailable() }, () => {
  it('same origin: the iframe starts the guest (?boot) and it answers', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
    const base = shared.server.url;
    const { page, frame } = await tutorial(`${base}tutorial.html`, `${base}?boot`, true);
    await startsAndAnswers(frame);
    await page.context().close();
  });

  it('another origin, with the headers docs/tutorial.md names: the guest starts and answers', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
    const pg = new URL(shared.server.url);
    const { page, frame } = await tutorial(`http://localhost:${pg.port}/tutorial.html`, `${shared.server.url}?boot`, true);
    await startsAndAnswers(frame);
    await page.context().close();
  });

  it('without allow="cross-origin-isolated" the playground says why it cannot start QEMU', async () => {
    const pg = new URL(shared.server.url);
    const { page, frame } = await tutorial(`http://localhost:${pg.port}/tutorial.html`, `${shared.server.url}?boot`, false);
    assert.equal(await frame.evaluate(() => self.crossOriginIsolated), false);
    const shown = await frame.locator('#isolation').textContent();
    log(`not isolated: ${shown}`);
    assert.match(shown ?? '', /Cross-Origin-Embedder-Policy.*iframe needs allow="cross-origin-isolated"/);
    // The rest of the page works: its controls answer.
    assert.equal(await frame.evaluate(() => window.playground.status().state), 'idle');
    await page.context().close();
  });
});
