// Runs in Node, inside Vite (dev server, preview server, build).
//
// Serves the unpacked QEMU artifacts (wasm/out/, made by `npm run
// artifacts`) at /artifacts/ in dev and copies them into the static build
// (which `vite preview` then serves like any static server would). They
// are served as files, never bundled: the Emscripten glue must load from
// its own URL, because QEMU's pthreads are Workers started from it.
//
// Bytes on the wire: nothing is compressed at serve time; each response
// is the precompressed twin its Accept-Encoding asks for
// (content-encoding.ts), with Content-Encoding and Vary: Accept-Encoding.
// - dev (`npm start`): gzip only, the committed gzip -9 files of
//   wasm/dist as they are;
// - the static build (`npm run build`): each file with FILE.br (brotli 11,
//   made by the build, precompress.ts) and FILE.gz beside it, which
//   `vite preview` sends: br, else gzip, else the file itself.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { extname, join, normalize, relative, resolve, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger, Plugin } from 'vite';
import { negotiateEncoding, type Encoding } from './content-encoding';
import { precompressTree } from './precompress';

/** Headers that make the page cross-origin isolated (SharedArrayBuffer). */
export const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

/** Maps a request path under the prefix to a file under dir, or null. */
export function artifactPath(dir: string, prefix: string, url: string): string | null {
  const path = decodeURIComponent(url.split('?')[0]!);
  if (!path.startsWith(prefix)) return null;
  const rel = normalize(path.slice(prefix.length));
  if (rel.startsWith('..') || rel.includes(`${sep}..`)) return null;
  const file = join(dir, rel);
  return file.startsWith(resolve(dir) + sep) ? file : null;
}

/** Where the precompressed twins of a file would be. */
export type Twins = (file: string) => Partial<Record<Exclude<Encoding, 'identity'>, string>>;

/** Twins beside the file: FILE.br, FILE.gz (the static build). */
export const twinsBeside: Twins = (file) => ({ br: `${file}.br`, gzip: `${file}.gz` });

/** Gzip twins only, in `gzDir` at the same relative paths as under `dir`
 * (dev: wasm/dist for wasm/out). */
export const gzipTwinsIn =
  (gzDir: string, dir: string): Twins =>
  (file) => ({ gzip: join(gzDir, `${relative(dir, file)}.gz`) });

/** What to send for this request: the encoding and the file holding it.
 * A twin counts only when it is there and smaller than the file. */
export function pickTwin(acceptEncoding: string | string[] | undefined, file: string, twins: Twins): { encoding: Encoding; path: string } {
  const size = statSync(file).size;
  const found = new Map<Encoding, string>();
  for (const [encoding, path] of Object.entries(twins(file)) as [Encoding, string][]) {
    if (existsSync(path) && statSync(path).isFile() && statSync(path).size < size) found.set(encoding, path);
  }
  const encoding = negotiateEncoding(acceptEncoding, [...found.keys()]);
  return { encoding, path: found.get(encoding) ?? file };
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Whether a request names an artifact by its version (`?v=`). */
export function versioned(url: string): boolean {
  const q = url.indexOf('?');
  return q >= 0 && new URLSearchParams(url.slice(q + 1)).has('v');
}

/** Serves files under `dir` at `prefix`, each as the twin the request
 * accepts (`twins` says where they are). */
export function serveArtifacts(dir: string, prefix: string, twins: Twins) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const file = artifactPath(dir, prefix, req.url ?? '');
    if (!file) return next();
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain');
      res.end(
        existsSync(dir)
          ? `${req.url} is not among the artifacts; run \`npm run artifacts\`\n`
          : 'wasm/out is missing: run `npm run artifacts` (it unpacks wasm/dist)\n',
      );
      return;
    }
    const { encoding, path } = pickTwin(req.headers['accept-encoding'], file, twins);
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Vary', 'Accept-Encoding');
    if (encoding !== 'identity') res.setHeader('Content-Encoding', encoding);
    const stat = statSync(path);
    // A versioned URL (`?v=`, the file's hash from the manifest: the page
    // asks so, worker/builds.ts) names one content for good: the browser
    // keeps it without asking again. Any other may change: revalidated.
    res.setHeader('Cache-Control', versioned(req.url ?? '') ? IMMUTABLE : 'no-cache');
    // A validator, so that a revisit revalidates (304) instead of fetching
    // again: the browser keeps a wasm's compiled code only with the cached
    // response it was compiled from.
    const etag = `"${encoding}-${stat.size}-${Math.floor(stat.mtimeMs)}"`;
    res.setHeader('ETag', etag);
    if (req.headers['if-none-match'] === etag) {
      res.statusCode = 304;
      return void res.end();
    }
    res.setHeader('Content-Length', String(stat.size));
    if (req.method === 'HEAD') return void res.end();
    createReadStream(path).pipe(res);
  };
}

/**
 * `dir`: the unpacked artifacts; `gzDir`: their committed .gz twins
 * (wasm/dist), or null (CPR_ARTIFACTS: a tree without twins);
 * `brotliCache`: where the build keeps brotli results across builds
 * (precompress.ts), or null.
 */
export function artifactsPlugin(dir: string, gzDir: string | null, brotliCache: string | null, prefix = '/artifacts/'): Plugin {
  let outDir = '';
  let logger: Logger | undefined;
  return {
    name: 'cpr-playground-artifacts',
    configureServer(server) {
      server.middlewares.use(serveArtifacts(dir, prefix, gzDir ? gzipTwinsIn(gzDir, dir) : () => ({})));
    },
    configurePreviewServer(server) {
      // The static build's artifacts, each with its twins beside it.
      server.middlewares.use(serveArtifacts(join(outDir, prefix), prefix, twinsBeside));
    },
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
      logger = config.logger;
    },
    async closeBundle() {
      if (!outDir || !existsSync(dir)) {
        this.warn('wasm/out is missing: the build has no QEMU artifacts; run `npm run artifacts` first');
        return;
      }
      await cp(dir, join(outDir, prefix), { recursive: true });
      // Any static server that serves precompressed files can send these
      // with Content-Encoding: gzip or br.
      if (gzDir && existsSync(gzDir)) {
        await cp(gzDir, join(outDir, prefix), { recursive: true, filter: (src) => statSync(src).isDirectory() || src.endsWith('.gz') });
      }
      const r = await precompressTree(join(outDir, prefix), brotliCache, {
        onCompress: () => logger?.info('artifacts: compressing with brotli 11 what the cache lacks (minutes for all of QEMU on 2 cores)'),
      });
      logger?.info(
        `artifacts: ${r.files} files precompressed in ${r.seconds.toFixed(1)} s (brotli: ${r.brotliMade} compressed, ${r.brotliCached} from the cache; gzip: ${r.gzipMade} made, the others committed)`,
      );
    },
  };
}
