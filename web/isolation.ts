// Runs on the page's main thread; uses no DOM (unit-tested in Node).
//
// QEMU's wasm build uses threads, which need SharedArrayBuffer, which
// browsers only give to cross-origin isolated pages. Say exactly that.

export const ISOLATION_HEADERS = [
  'Cross-Origin-Opener-Policy: same-origin',
  'Cross-Origin-Embedder-Policy: require-corp',
] as const;

/** Null when isolated; otherwise what is missing and how to fix it. */
export function isolationProblem(isolated: boolean): string | null {
  if (isolated) return null;
  return (
    'This page is not cross-origin isolated, so the browser withholds SharedArrayBuffer and QEMU ' +
    `(which runs its threads on it) cannot start. Serve the page with the headers ${ISOLATION_HEADERS.join(' and ')} ` +
    '(`npm start` and `npm run preview` do), and open it over http://localhost or https.'
  );
}
