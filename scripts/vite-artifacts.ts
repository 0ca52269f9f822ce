// Runs in Node, inside Vite (dev server, preview server, build).
//
// Serves the unpacked QEMU artifacts (wasm/out/, made by `npm run
// artifacts`) at /artifacts/ in dev and copies them into the static build
// (which `vite preview` then serves like any static server would). They
// are served as files, never bundled: the Emscripten glue must load from
// its own URL, because QEMU's pthreads are Workers started from it.
//
// Bytes on the wire: a browser that accepts gzip gets the committed
// gzip -9 files (wasm/dist/**.gz) as they are, with Content-Encoding:
// gzip, in dev, in the static build (each file's .gz beside it) and in
// `vite preview`; nothing is compressed at serve time.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Plugin } from 'vite';

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

/** The precompressed twin of `file` to send for this request, or null. */
export function gzipTwin(req: IncomingMessage, file: string, gzDir: string | null, dir: string): string | null {
  if (!/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return null;
  const twin = gzDir ? join(gzDir, `${file.slice(resolve(dir).length + 1)}.gz`) : `${file}.gz`;
  return existsSync(twin) && statSync(twin).isFile() ? twin : null;
}

/** Serves files under `dir` at `prefix`; `gzDir` holds their .gz twins
 * (same relative paths), or null when they sit beside the files. */
function serve(dir: string, prefix: string, gzDir: string | null) {
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
    const twin = gzipTwin(req, file, gzDir, dir);
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Vary', 'Accept-Encoding');
    if (twin) res.setHeader('Content-Encoding', 'gzip');
    res.setHeader('Content-Length', String(statSync(twin ?? file).size));
    res.setHeader('Cache-Control', 'no-cache');
    if (req.method === 'HEAD') return void res.end();
    createReadStream(twin ?? file).pipe(res);
  };
}

/**
 * `dir`: the unpacked artifacts; `gzDir`: their committed .gz twins
 * (wasm/dist), or null (CPR_ARTIFACTS: a tree without twins).
 */
export function artifactsPlugin(dir: string, gzDir: string | null, prefix = '/artifacts/'): Plugin {
  let outDir = '';
  return {
    name: 'cpr-playground-artifacts',
    configureServer(server) {
      server.middlewares.use(serve(dir, prefix, gzDir));
    },
    configurePreviewServer(server) {
      // The static build's artifacts, each with its .gz beside it.
      server.middlewares.use(serve(join(outDir, prefix), prefix, null));
    },
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      if (!outDir || !existsSync(dir)) {
        this.warn('wasm/out is missing: the build has no QEMU artifacts; run `npm run artifacts` first');
        return;
      }
      await cp(dir, join(outDir, prefix), { recursive: true });
      // Any static server can send these with Content-Encoding: gzip.
      if (gzDir && existsSync(gzDir)) {
        await cp(gzDir, join(outDir, prefix), { recursive: true, filter: (src) => statSync(src).isDirectory() || src.endsWith('.gz') });
      }
    },
  };
}
