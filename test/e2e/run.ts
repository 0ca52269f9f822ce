// Runs in Node: `npm run test:e2e`. Node's own test runner, one file at a
// time (each starts its own server and browser), so the 2-core machine
// that may also build QEMU stays usable.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const files = process.argv.slice(2);
const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const targets = files.length
  ? files
  : [here('./static.e2e.ts'), here('./playground.e2e.ts'), here('./live-update.e2e.ts'), here('./live-update-failures.e2e.ts'), here('./snapshot.e2e.ts'), here('./files.e2e.ts'), here('./tour.e2e.ts'), here('./embed.e2e.ts'), here('./jit.e2e.ts'), here('./firefox.e2e.ts')];
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...targets], { stdio: 'inherit' });
process.exit(r.status ?? 1);
