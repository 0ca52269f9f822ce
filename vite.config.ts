// Runs in Node: Vite's configuration for dev (`npm start`), the static
// build (`npm run build`) and its preview (`npm run preview`).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { artifactsPlugin, ISOLATION_HEADERS } from './scripts/vite-artifacts';

const repo = fileURLToPath(new URL('.', import.meta.url));
const port = Number(process.env.PORT) || 5173;
const brotliCache = `${repo}node_modules/.cache/cpr-playground/artifacts`;

export default defineConfig({
  root: 'web',
  // Relative asset URLs: the static site works from any path of any server.
  base: './',
  // CPR_ARTIFACTS serves another unpacked artifacts tree (e.g. a work dir's
  // builds before they are packaged into wasm/dist). The build keeps its
  // brotli results in node_modules/.cache (disposable; keyed by content).
  plugins: [
    process.env.CPR_ARTIFACTS
      ? artifactsPlugin(process.env.CPR_ARTIFACTS, null, brotliCache)
      : artifactsPlugin(`${repo}wasm/out`, `${repo}wasm/dist`, brotliCache),
  ],
  server: {
    port,
    strictPort: !!process.env.PORT,
    headers: ISOLATION_HEADERS,
    // The page imports worker/api.ts from outside web/.
    fs: { allow: [repo] },
  },
  preview: { port: Number(process.env.PORT) || 4173, headers: ISOLATION_HEADERS },
  worker: { format: 'es' },
  // Pre-bundle at start-up, so a first page load never triggers a
  // dependency re-optimisation and a reload (which would break tests).
  optimizeDeps: { include: ['comlink', '@xterm/xterm', '@xterm/addon-fit'] },
  build: { outDir: '../dist', emptyOutDir: true, target: 'es2022' },
});
