// Where everything that runs in Node (smoke and e2e tests, benchmarks,
// experiments) finds the unpacked artifacts: wasm/out, which `npm run
// artifacts` fills from wasm/dist, or the tree CPR_ARTIFACTS names (a work
// dir's builds not yet in wasm/dist). The dev server reads the same
// variable (vite.config.ts).
import { fileURLToPath } from 'node:url';

export const ARTIFACTS = (process.env.CPR_ARTIFACTS ?? fileURLToPath(new URL('../wasm/out', import.meta.url))).replace(/\/$/, '');
