import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isText, precompressTree } from './precompress';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'precompress-test-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const js = 'export const x = "glue";\n'.repeat(400);
const bin = Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d]), Buffer.alloc(30_000, 3)]);

function tree(dir: string): void {
  mkdirSync(join(dir, 'qemu/v1'), { recursive: true });
  mkdirSync(join(dir, 'qemu/v2'), { recursive: true });
  writeFileSync(join(dir, 'qemu/v1/q.js'), js);
  writeFileSync(join(dir, 'qemu/v2/q.js'), js);
  writeFileSync(join(dir, 'qemu/v1/q.wasm'), bin);
  // A committed gzip twin, kept as it is.
  writeFileSync(join(dir, 'qemu/v1/q.wasm.gz'), 'committed');
  writeFileSync(join(dir, 'cmdline'), 'console=ttyAMA0');
}

describe('precompressTree', () => {
  it('writes FILE.br for every file and FILE.gz where missing, both decoding to the file', async () => {
    const dir = join(root, 'a');
    tree(dir);
    const r = await precompressTree(dir, null);
    expect(r.files).toBe(4);
    for (const f of ['qemu/v1/q.js', 'qemu/v2/q.js', 'qemu/v1/q.wasm']) {
      const raw = readFileSync(join(dir, f));
      expect(brotliDecompressSync(readFileSync(join(dir, `${f}.br`))).equals(raw)).toBe(true);
    }
    expect(gunzipSync(readFileSync(join(dir, 'qemu/v1/q.js.gz'))).toString()).toBe(js);
    expect(readFileSync(join(dir, 'qemu/v1/q.wasm.gz'), 'utf8')).toBe('committed');
    // Twins no smaller than the file are not written.
    expect(existsSync(join(dir, 'cmdline.br'))).toBe(false);
    expect(existsSync(join(dir, 'cmdline.gz'))).toBe(false);
    // v1 and v2 share their .js: compressed once.
    expect(r.brotliMade).toBe(3);
    expect(r.gzipMade).toBe(3);
  });

  it('takes brotli results from the cache on the next build', async () => {
    const cache = join(root, 'cache');
    tree(join(root, 'a'));
    tree(join(root, 'b'));
    const first = await precompressTree(join(root, 'a'), cache);
    expect([first.brotliMade, first.brotliCached]).toEqual([3, 0]);
    const second = await precompressTree(join(root, 'b'), cache);
    expect([second.brotliMade, second.brotliCached]).toEqual([0, 3]);
    expect(readFileSync(join(root, 'b/qemu/v1/q.wasm.br')).equals(readFileSync(join(root, 'a/qemu/v1/q.wasm.br')))).toBe(true);
    expect(readdirSync(cache).sort()).toEqual(['br-q11-w22-generic', 'br-q11-w22-text']);
  });

  it('compresses again when a cached result does not decode to the file', async () => {
    const cache = join(root, 'cache');
    tree(join(root, 'a'));
    await precompressTree(join(root, 'a'), cache);
    const entry = readdirSync(join(cache, 'br-q11-w22-generic'))[0]!;
    writeFileSync(join(cache, 'br-q11-w22-generic', entry), 'not brotli');
    tree(join(root, 'b'));
    const r = await precompressTree(join(root, 'b'), cache);
    expect([r.brotliMade, r.brotliCached]).toEqual([1, 2]);
    expect(brotliDecompressSync(readFileSync(join(root, 'b/qemu/v1/q.wasm.br'))).equals(bin)).toBe(true);
  });

  it('does not take twins for files', async () => {
    const dir = join(root, 'c');
    mkdirSync(dir);
    writeFileSync(join(dir, 'f.txt'), js);
    writeFileSync(join(dir, 'f.txt.gz'), gzipSync(js));
    await precompressTree(dir, null);
    expect(readdirSync(dir).sort()).toEqual(['f.txt', 'f.txt.br', 'f.txt.gz']);
  });
});

describe('isText', () => {
  it('calls a file with a NUL byte binary', () => {
    expect(isText(Buffer.from(js))).toBe(true);
    expect(isText(bin)).toBe(false);
  });
});
