// Runs in Node: `npm run test:e2e [FILE...]`. Node's own test runner, one
// file at a time (each starts its own server and browser), so the 2-core
// machine that may also build QEMU stays usable; each file under a cap
// (../capped.ts).
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCapped, summarize, type CappedRun } from '../capped';

/** The slowest file takes ~5 min here (live-update.e2e.ts); the cap leaves
 * room for a machine three times slower. */
const FILE_CAP_MS = Number(process.env.E2E_FILE_CAP_MIN ?? 15) * 60_000;
const ALL = ['static', 'playground', 'live-update', 'live-update-failures', 'snapshot', 'files', 'tour', 'embed', 'jit', 'firefox'];

const files = process.argv.slice(2);
const targets = files.length ? files : ALL.map((name) => fileURLToPath(new URL(`./${name}.e2e.ts`, import.meta.url)));
const runs: CappedRun[] = [];
for (const file of targets) runs.push(await runCapped(basename(file), [file], FILE_CAP_MS));
process.exit(summarize('e2e summary', runs) ? 0 : 1);
