// Runs in Node (node:test): the static build (`npm run build`) served by
// `vite preview` is a working, cross-origin isolated playground with its
// artifacts. The boot itself is covered by playground.e2e.ts; here a
// quick boot-free check keeps the static path honest.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { freePort, launchBrowser, openPage, REPO } from './harness';

const outDir = mkdtempSync(join(tmpdir(), 'cpr-playground-dist-'));
let server: PreviewServer;
let browser: Browser;
let url: string;

before(async () => {
  const common = { configFile: `${REPO}vite.config.ts`, logLevel: 'warn' as const };
  await build({ ...common, build: { outDir, emptyOutDir: true } });
  const port = await freePort();
  server = await preview({ ...common, build: { outDir }, preview: { port, strictPort: true, host: '127.0.0.1' } });
  url = `http://127.0.0.1:${port}/`;
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.httpServer.close(() => resolve()) : resolve()));
  rmSync(outDir, { recursive: true, force: true });
});

it('serves an isolated page with the QEMU builds and their wasm', { timeout: 300_000 }, async () => {
  const page = await openPage(browser, url);
  assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
  const builds = await page.evaluate(() => window.playground.builds());
  assert.ok(builds.some((b) => b.name === 'qemu-system-arm@v1'), JSON.stringify(builds));
  assert.ok(builds.some((b) => b.name === 'qemu-system-i386@v1'), JSON.stringify(builds));
  const wasm = await page.evaluate(async () => {
    const r = await fetch('artifacts/qemu/v1/qemu-system-arm.wasm', { method: 'HEAD' });
    return { status: r.status, type: r.headers.get('content-type'), coep: r.headers.get('cross-origin-embedder-policy') };
  });
  assert.equal(wasm.status, 200);
  assert.equal(wasm.type, 'application/wasm');
  assert.equal(wasm.coep, 'require-corp');
  await page.context().close();
});
