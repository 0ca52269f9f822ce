// Runs in the QEMU host worker; no DOM.
//
// Fetches artifacts with byte progress, so the page can show a real
// progress bar for a ~30 MB wasm and the guest images, and turns every
// failure into a PlaygroundError that names the URL and what to do.
import { PlaygroundError } from './api';
import { concatBytes } from './backend';

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

export interface DownloadProgress {
  url: string;
  loaded: number;
  /** 0 when the server sends no Content-Length. */
  total: number;
}

const HINT = 'run `npm run artifacts` (it unpacks wasm/dist into wasm/out) and reload';

/**
 * `expectedBytes`: the unpacked size, when known (the manifest's). A
 * server may send the file encoded (the dev server sends gzip, the static
 * build brotli or gzip): then Content-Length counts the compressed bytes
 * while the body arrives decompressed, so progress and the length check
 * use `expectedBytes` instead.
 */
export async function download(
  url: string,
  onProgress: (p: DownloadProgress) => void,
  fetchImpl: FetchLike = (u) => fetch(u),
  hint: string = HINT,
  expectedBytes?: number,
): Promise<Uint8Array> {
  return readBody(url, await fetchOk(url, fetchImpl, hint), onProgress, expectedBytes);
}

/** The response for `url`, or a PlaygroundError that says why not. */
export async function fetchOk(url: string, fetchImpl: FetchLike = (u) => fetch(u), hint: string = HINT): Promise<Response> {
  let response: Response;
  try {
    response = await fetchImpl(url);
  } catch (e) {
    throw new PlaygroundError('load-failed', `could not fetch ${url}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!response.ok) {
    throw new PlaygroundError('load-failed', `could not fetch ${url}: HTTP ${response.status} ${response.statusText}; ${hint}`);
  }
  return response;
}

/**
 * The response for `url` if the browser's cache holds it whole, asking no
 * server, else null. Only for a URL whose content never changes (a
 * versioned artifact, worker/builds.ts): the cache hands it out however
 * old it is.
 */
export async function fetchCached(url: string, fetchImpl: FetchLike = (u, i) => fetch(u, i)): Promise<Response | null> {
  try {
    const response = await fetchImpl(url, { cache: 'only-if-cached', mode: 'same-origin' });
    return response.ok ? response : null;
  } catch {
    return null;
  }
}

/** A response's body whole, with progress (see download()). */
export async function readBody(url: string, response: Response, onProgress: (p: DownloadProgress) => void, expectedBytes?: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await drainBody(url, response, onProgress, expectedBytes, (c) => chunks.push(c));
  return concatBytes(chunks);
}

/** Reads a response's body through for its progress alone (see
 * download()), keeping nothing: the body of a clone whose twin someone
 * else consumes (a wasm compiled as it streams in). */
export async function countBody(url: string, response: Response, onProgress: (p: DownloadProgress) => void, expectedBytes?: number): Promise<void> {
  await drainBody(url, response, onProgress, expectedBytes, () => undefined);
}

/** Hands each chunk of a response's body to `take`, with progress, and
 * checks the length it ends at; resolves with that length. */
async function drainBody(
  url: string,
  response: Response,
  onProgress: (p: DownloadProgress) => void,
  expectedBytes: number | undefined,
  take: (chunk: Uint8Array) => void,
): Promise<number> {
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = encoded ? (expectedBytes ?? 0) : Number(response.headers.get('content-length') ?? 0) || 0;
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    take(bytes);
    onProgress({ url, loaded: bytes.length, total: bytes.length });
    return bytes.length;
  }
  const reader = response.body.getReader();
  let loaded = 0;
  onProgress({ url, loaded, total });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    take(value);
    loaded += value.length;
    onProgress({ url, loaded, total });
  }
  if (total && loaded !== total) {
    throw new PlaygroundError('load-failed', `download of ${url} ended after ${loaded} of ${total} bytes; reload to retry`);
  }
  return loaded;
}

/** wasm files start with "\0asm"; a 404 page or a gzip would not. */
export function checkWasmMagic(url: string, bytes: Uint8Array): void {
  const ok = bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (!ok) {
    const head = Array.from(bytes.slice(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new PlaygroundError(
      'load-failed',
      `${url} is not a WebAssembly module (it starts with ${head || 'nothing'}, not 00 61 73 6d); ${HINT}`,
    );
  }
}
