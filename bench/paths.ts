// Runs in Node: where the benchmark finds the artifacts the page serves.
// CPR_ARTIFACTS (as for the dev server and the e2e tests) names another
// unpacked artifacts tree, e.g. a work dir's builds not yet in wasm/dist.
import { REPO } from '../test/e2e/harness';

export const ARTIFACTS = (process.env.CPR_ARTIFACTS ?? `${REPO}wasm/out`).replace(/\/$/, '');
