// Runs in Node (vitest): downloads with progress, plain and gzip-encoded.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { download, fetchCached, type DownloadProgress } from './download';

const BODY = new Uint8Array(200_000).map((_, i) => i & 0xff);
/** Byte-wise equality: expect().toEqual() over 200 KB takes seconds. */
const same = (a: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(BODY));

describe('download', () => {
  it('counts progress against Content-Length and checks it', async () => {
    const seen: DownloadProgress[] = [];
    const bytes = await download('http://x/a.wasm', (p) => seen.push(p), async () => new Response(BODY.slice(), { headers: { 'content-length': String(BODY.length) } }));
    expect(same(bytes)).toBe(true);
    expect(seen.at(-1)).toMatchObject({ loaded: BODY.length, total: BODY.length });
  });

  it('a gzip-encoded body: progress and the check use the unpacked size, not the compressed Content-Length', async () => {
    const gz = gzipSync(BODY);
    // What a browser's fetch gives for Content-Encoding: gzip: the body
    // decompressed, the headers as sent.
    const fetchGz = async (): Promise<Response> =>
      new Response(BODY.slice(), { headers: { 'content-length': String(gz.length), 'content-encoding': 'gzip' } });
    const seen: DownloadProgress[] = [];
    expect(same(await download('http://x/a.wasm', (p) => seen.push(p), fetchGz, undefined, BODY.length))).toBe(true);
    expect(seen.at(-1)).toMatchObject({ loaded: BODY.length, total: BODY.length });
    // Unknown unpacked size: no total, and no false "ended after" error.
    expect(same(await download('http://x/a.wasm', () => undefined, fetchGz))).toBe(true);
  });

  it('asks only the cache for a kept response, and says null when it has none', async () => {
    const asked: (RequestInit | undefined)[] = [];
    const kept = await fetchCached('http://x/a.wasm', async (_, init) => {
      asked.push(init);
      return new Response(BODY.slice());
    });
    expect(kept?.ok).toBe(true);
    expect(asked).toEqual([{ cache: 'only-if-cached', mode: 'same-origin' }]);
    // What a browser gives for a miss: a network error, or an error status.
    expect(await fetchCached('http://x/a.wasm', () => Promise.reject(new TypeError('Failed to fetch')))).toBeNull();
    expect(await fetchCached('http://x/a.wasm', async () => new Response('', { status: 504 }))).toBeNull();
  });

  it('says where a cut-off download ended', async () => {
    const cut = async (): Promise<Response> => new Response(BODY.slice(0, 1000), { headers: { 'content-length': String(BODY.length) } });
    await expect(download('http://x/a.wasm', () => undefined, cut)).rejects.toMatchObject({ code: 'load-failed', message: /ended after 1000 of 200000 bytes/ });
  });
});
