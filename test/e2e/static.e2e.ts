// Runs in Node (node:test): the static build (`npm run build`) served by
// `vite preview` is a working, cross-origin isolated playground with its
// artifacts, which Chromium gets brotli-encoded and boots the arm guest
// from. The UI of a boot is covered by playground.e2e.ts.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { BOOT_TIMEOUT_MS, e2eLog, launchBrowser, openPage, startStaticServer, type StaticServer } from './harness';

let server: StaticServer;
let browser: Browser;
let url: string;
let outDir: string;

before(async () => {
  server = await startStaticServer();
  url = server.url;
  outDir = server.outDir;
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.close();
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

/** A raw GET or HEAD (no decoding), as a client with this Accept-Encoding. */
function raw(path: string, acceptEncoding: string | null, method = 'GET'): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = acceptEncoding === null ? {} : { 'accept-encoding': acceptEncoding };
    const req = request(new URL(path, url), { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

it('ships each artifact with .br and .gz twins and sends the one the client accepts', { timeout: 120_000 }, async () => {
  const wasmPath = 'artifacts/qemu/v1/qemu-system-arm.wasm';
  const file = join(outDir, wasmPath);
  for (const twin of ['.br', '.gz']) assert.ok(existsSync(file + twin), `${wasmPath}${twin} is missing from the build`);
  const rawBytes = readFileSync(file);
  const cases: [string | null, string | undefined, (b: Buffer) => Buffer][] = [
    ['gzip, deflate, br, zstd', 'br', brotliDecompressSync],
    ['gzip, br;q=0', 'gzip', gunzipSync],
    ['br;q=0.5, gzip', 'gzip', gunzipSync],
    ['br;q=0, gzip;q=0', undefined, (b) => b],
    [null, undefined, (b) => b],
  ];
  for (const [accept, encoding, decode] of cases) {
    const r = await raw(wasmPath, accept);
    const what = `GET with Accept-Encoding: ${accept ?? '(none)'}`;
    assert.equal(r.status, 200, what);
    assert.equal(r.headers['content-encoding'], encoding, what);
    assert.equal(r.headers['content-type'], 'application/wasm', what);
    assert.equal(r.headers['vary'], 'Accept-Encoding', what);
    assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', what);
    assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', what);
    assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin', what);
    assert.equal(Number(r.headers['content-length']), r.body.length, what);
    const twin = encoding === 'br' ? '.br' : encoding === 'gzip' ? '.gz' : '';
    assert.equal(r.body.length, statSync(file + twin).size, what);
    assert.ok(decode(r.body).equals(rawBytes), `${what}: the body does not decode to the wasm`);
  }
  const head = await raw(wasmPath, 'br', 'HEAD');
  assert.equal(head.headers['content-encoding'], 'br');
  assert.equal(Number(head.headers['content-length']), statSync(`${file}.br`).size);
});

it('Chromium gets the QEMU wasm, its glue and the guest brotli-encoded and boots the arm guest from them', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  const page = await openPage(browser, url, e2eLog);
  // Every artifact response, from the page and its workers.
  const seen = new Map<string, { status: number; headers: Record<string, string> }>();
  page.context().on('response', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith('/artifacts/')) seen.set(path.slice(1), { status: r.status(), headers: r.headers() });
  });
  const status = await page.evaluate(() => window.playground.boot({ guest: 'arm', ramMiB: 128, build: 'v1' }));
  assert.equal(status.state, 'running');
  await page.evaluate(() => window.playground.sendSerial('echo $((6*7))\n'));
  await page.evaluate(() => window.playground.waitForSerial(/^42\r?$/m, 60_000));
  for (const [path, r] of seen) e2eLog(`${path}: ${r.status} ${r.headers['content-encoding'] ?? 'identity'} ${r.headers['content-length']} bytes`);
  for (const path of ['artifacts/qemu/v1/qemu-system-arm.wasm', 'artifacts/qemu/v1/qemu-system-arm.js', 'artifacts/guest/arm/uImage', 'artifacts/guest/arm/initrd.cpio']) {
    const r = seen.get(path);
    assert.ok(r, `the browser never fetched ${path}; it fetched ${[...seen.keys()].join(', ')}`);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers['content-encoding'], 'br', path);
    assert.equal(Number(r.headers['content-length']), statSync(join(outDir, `${path}.br`)).size, path);
    assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', path);
  }
  assert.equal(seen.get('artifacts/qemu/v1/qemu-system-arm.wasm')?.headers['content-type'], 'application/wasm');
  await page.evaluate(() => window.playground.stop());
  await page.context().close();
});
