import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipTwinsIn, ISOLATION_HEADERS, pickTwin, serveArtifacts, twinsBeside } from './vite-artifacts';

const wasm = Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), Buffer.alloc(20_000, 7)]);
let root: string;
let server: Server;
let base: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'vite-artifacts-test-'));
  // A static build's tree: twins beside the files.
  mkdirSync(join(root, 'static/qemu'), { recursive: true });
  writeFileSync(join(root, 'static/qemu/a.wasm'), wasm);
  writeFileSync(join(root, 'static/qemu/a.wasm.br'), brotliCompressSync(wasm));
  writeFileSync(join(root, 'static/qemu/a.wasm.gz'), gzipSync(wasm));
  writeFileSync(join(root, 'static/only-gz.js'), 'x'.repeat(5000));
  writeFileSync(join(root, 'static/only-gz.js.gz'), gzipSync('x'.repeat(5000)));
  // A twin larger than its file is never sent.
  writeFileSync(join(root, 'static/cmdline'), 'console=ttyAMA0');
  writeFileSync(join(root, 'static/cmdline.gz'), gzipSync('console=ttyAMA0'));
  // Dev: gzip twins in another tree.
  mkdirSync(join(root, 'out'), { recursive: true });
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, 'out/a.wasm'), wasm);
  writeFileSync(join(root, 'dist/a.wasm.gz'), gzipSync(wasm));

  const staticServe = serveArtifacts(join(root, 'static'), '/artifacts/', twinsBeside);
  const devServe = serveArtifacts(join(root, 'out'), '/dev/', gzipTwinsIn(join(root, 'dist'), join(root, 'out')));
  server = createServer((req, res) =>
    staticServe(req, res, () =>
      devServe(req, res, () => {
        res.statusCode = 418;
        res.end();
      }),
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
});

/** A raw request (no client-side decoding): status, headers, body bytes. */
function get(path: string, acceptEncoding?: string, method = 'GET'): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('pickTwin', () => {
  it('picks br, else gzip, else the file, among twins that exist', () => {
    const f = join(root, 'static/qemu/a.wasm');
    expect(pickTwin('gzip, deflate, br, zstd', f, twinsBeside)).toEqual({ encoding: 'br', path: `${f}.br` });
    expect(pickTwin('gzip, br;q=0', f, twinsBeside)).toEqual({ encoding: 'gzip', path: `${f}.gz` });
    expect(pickTwin(undefined, f, twinsBeside)).toEqual({ encoding: 'identity', path: f });
    const js = join(root, 'static/only-gz.js');
    expect(pickTwin('br, gzip', js, twinsBeside)).toEqual({ encoding: 'gzip', path: `${js}.gz` });
  });

  it('never sends a twin larger than its file', () => {
    const f = join(root, 'static/cmdline');
    expect(pickTwin('gzip, br', f, twinsBeside)).toEqual({ encoding: 'identity', path: f });
  });
});

describe('serveArtifacts', () => {
  it('sends the br twin to a browser, with its length, type, Vary and the isolation headers', async () => {
    const r = await get('/artifacts/qemu/a.wasm', 'gzip, deflate, br, zstd');
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe('br');
    expect(r.headers['content-type']).toBe('application/wasm');
    expect(r.headers['vary']).toBe('Accept-Encoding');
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    expect(brotliDecompressSync(r.body).equals(wasm)).toBe(true);
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) expect(r.headers[k.toLowerCase()]).toBe(v);
  });

  it('sends gzip when br is refused, the file when both are', async () => {
    const gz = await get('/artifacts/qemu/a.wasm', 'br;q=0, gzip');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(Number(gz.headers['content-length'])).toBe(gz.body.length);
    expect(gunzipSync(gz.body).equals(wasm)).toBe(true);
    const plain = await get('/artifacts/qemu/a.wasm', 'br;q=0, gzip;q=0');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers['vary']).toBe('Accept-Encoding');
    expect(Number(plain.headers['content-length'])).toBe(wasm.length);
    expect(plain.body.equals(wasm)).toBe(true);
    const none = await get('/artifacts/qemu/a.wasm');
    expect(none.headers['content-encoding']).toBeUndefined();
    expect(none.body.equals(wasm)).toBe(true);
  });

  it('answers HEAD with the headers GET would send', async () => {
    const r = await get('/artifacts/qemu/a.wasm', 'br', 'HEAD');
    expect(r.headers['content-encoding']).toBe('br');
    expect(Number(r.headers['content-length'])).toBeLessThan(wasm.length);
    expect(r.body.length).toBe(0);
  });

  it('dev: gzip from the other tree, never br', async () => {
    const r = await get('/dev/a.wasm', 'gzip, deflate, br, zstd');
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(r.body).equals(wasm)).toBe(true);
  });

  it('lets a versioned URL be kept for good, revalidates any other', async () => {
    const kept = await get('/artifacts/qemu/a.wasm?v=0123456789abcdef', 'br');
    expect(kept.status).toBe(200);
    expect(kept.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(brotliDecompressSync(kept.body).equals(wasm)).toBe(true);
    const plain = await get('/artifacts/qemu/a.wasm', 'br');
    expect(plain.headers['cache-control']).toBe('no-cache');
    expect(plain.headers['etag']).toBeTruthy();
  });

  it('keeps the isolation headers on a 404 and passes other paths on', async () => {
    const r = await get('/artifacts/nope.wasm', 'br');
    expect(r.status).toBe(404);
    expect(r.headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect((await get('/elsewhere')).status).toBe(418);
  });
});
