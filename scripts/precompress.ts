// Runs in Node, inside Vite (`npm run build`): gives every artifact in the
// static build a brotli twin (FILE.br) and a gzip twin (FILE.gz), for
// `vite preview` and any static server that serves precompressed files.
//
// gzip: the committed gzip -9 files of wasm/dist are copied beside the
// artifacts before this runs; only a file without one (manifest.json,
// NOTICE, or every file of a CPR_ARTIFACTS tree) gets a gzip -9 here.
//
// brotli: quality 11 (the smallest), the default 4 MiB window (a 16 MiB
// one saves 1% on the wasm for 28% more time), the file's size as a hint,
// text mode for text. Quality 11 is slow: ~50 s per QEMU wasm on this
// 2-core machine, minutes for all of them. So files are compressed in
// parallel (zlib's async calls run on libuv's thread pool), largest
// first, identical files once, and each result is kept in a cache keyed
// by the sha256 of the file and the settings: a build whose artifacts did
// not change (the usual case: wasm/dist changes only with a QEMU rebuild)
// takes them from there in a second.
//
// A twin no smaller than its file is not written (cmdline: 36 bytes).
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompressSync, constants, gzip } from 'node:zlib';

const brotli = promisify(brotliCompress);
const gzip9 = promisify(gzip);

export interface PrecompressReport {
  /** Files given twins. */
  files: number;
  /** Brotli twins compressed now / taken from the cache. */
  brotliMade: number;
  brotliCached: number;
  /** Gzip twins made now (the others were there). */
  gzipMade: number;
  seconds: number;
}

/** Binary if a NUL byte is among the first 8000 (git's test). */
export function isText(bytes: Uint8Array): boolean {
  return !bytes.subarray(0, 8000).includes(0);
}

/** The brotli settings for `bytes`, and a name for them (the cache key). */
export function brotliSettings(bytes: Uint8Array): { key: string; params: Record<number, number> } {
  const text = isText(bytes);
  return {
    key: `br-q11-w22-${text ? 'text' : 'generic'}`,
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 22,
      [constants.BROTLI_PARAM_MODE]: text ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  };
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && !/\.(gz|br)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Runs `jobs` with at most `limit` at a time. */
async function pool(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, lane));
}

function decodesTo(br: Buffer, sha: string): boolean {
  try {
    return createHash('sha256').update(brotliDecompressSync(br)).digest('hex') === sha;
  } catch {
    return false;
  }
}

async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/**
 * Writes FILE.br (and FILE.gz where missing) beside every file under
 * `dir`. `cacheDir`: where brotli results are kept across builds, or null.
 * `onCompress` is called once, before the first file the cache lacks.
 */
export async function precompressTree(
  dir: string,
  cacheDir: string | null,
  { concurrency = availableParallelism(), onCompress = () => undefined }: { concurrency?: number; onCompress?: () => void } = {},
): Promise<PrecompressReport> {
  const started = performance.now();
  const report: PrecompressReport = { files: 0, brotliMade: 0, brotliCached: 0, gzipMade: 0, seconds: 0 };
  const files = await listFiles(dir);
  const sizes = new Map<string, number>();
  for (const f of files) sizes.set(f, (await stat(f)).size);
  files.sort((a, b) => sizes.get(b)! - sizes.get(a)!);

  // One compression per distinct content and settings (v1 and v2 share
  // their .js), shared by the files that have it.
  const brotliOf = new Map<string, Promise<Buffer>>();
  const jobs: (() => Promise<void>)[] = [];
  for (const file of files) {
    report.files++;
    jobs.push(async () => {
      const bytes = await readFile(file);
      const { key, params } = brotliSettings(bytes);
      const sha = createHash('sha256').update(bytes).digest('hex');
      const id = `${key}/${sha}`;
      let compressed = brotliOf.get(id);
      if (!compressed) {
        compressed = (async () => {
          const cached = cacheDir ? join(cacheDir, key, `${sha}.br`) : null;
          // A cached result is used only if it decodes to the file (cheap:
          // decoding is fast, unlike quality 11).
          if (cached && existsSync(cached)) {
            const hit = await readFile(cached);
            if (decodesTo(hit, sha)) {
              report.brotliCached++;
              return hit;
            }
          }
          if (report.brotliMade === 0) onCompress();
          report.brotliMade++;
          const out = await brotli(bytes, { params });
          if (cached) {
            await mkdir(join(cacheDir!, key), { recursive: true });
            await writeAtomically(cached, out);
          }
          return out;
        })();
        brotliOf.set(id, compressed);
      }
      const br = await compressed;
      if (br.length < bytes.length) await writeFile(`${file}.br`, br);
      if (!existsSync(`${file}.gz`)) {
        const gz = await gzip9(bytes, { level: 9 });
        report.gzipMade++;
        if (gz.length < bytes.length) await writeFile(`${file}.gz`, gz);
      }
    });
  }
  await pool(jobs, concurrency);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
