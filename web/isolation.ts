// Runs on the page's main thread; uses no DOM (unit-tested in Node).
//
// QEMU's wasm build uses threads, which need SharedArrayBuffer, which
// browsers only give to cross-origin isolated pages. Say exactly that.

export const ISOLATION_HEADERS = [
  'Cross-Origin-Opener-Policy: same-origin',
  'Cross-Origin-Embedder-Policy: require-corp',
] as const;

/** Null when isolated; otherwise what is missing and how to fix it.
 * `framed`: the page is in an iframe, where the embedding page decides. */
export function isolationProblem(isolated: boolean, framed = false): string | null {
  if (isolated) return null;
  return (
    'This page is not cross-origin isolated, so the browser withholds SharedArrayBuffer and QEMU ' +
    `(which runs its threads on it) cannot start. Serve the page with the headers ${ISOLATION_HEADERS.join(' and ')} ` +
    '(`npm start` and `npm run preview` do), and open it over http://localhost or https.' +
    (framed
      ? ' In an iframe, the embedding page needs the same two headers and the iframe needs allow="cross-origin-isolated"; ' +
        'from another origin, this page also needs Cross-Origin-Resource-Policy: cross-origin (docs/tutorial.md, "Embedding").'
      : '')
  );
}
