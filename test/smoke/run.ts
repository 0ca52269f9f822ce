// Runs in Node: `npm run smoke`. The smoke checks and the cpr refusals,
// each under a cap (../capped.ts): both boot real QEMUs in this process's
// threads, and a runtime thread that never returns would stop their own
// timeouts from firing.
import { fileURLToPath } from 'node:url';
import { runCapped, summarize } from '../capped';

/** Each program takes ~1 min here. */
const CAP_MS = 10 * 60_000;
const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

// `npm run smoke -- arm` runs smoke.ts's arm check alone.
const only = process.argv.slice(2);
const runs = [await runCapped('smoke.ts', [here('./smoke.ts'), ...only], CAP_MS)];
if (runs[0]!.outcome === 'passed' && only.length === 0) runs.push(await runCapped('cpr-refusals.ts', [here('./cpr-refusals.ts')], CAP_MS));
process.exit(summarize('smoke summary', runs) ? 0 : 1);
