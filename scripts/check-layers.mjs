// Runs in Node (part of `npm run typecheck`).
//
// The layer rule the compiler cannot state: web/ (the page) imports only
// worker/api.ts from worker/, and worker/ never imports from web/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const walk = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    // Tests (*.test.ts) may cross layers: they wire both ends on purpose.
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
const problems = [];
for (const [layer, rule] of [
  ['web', (target) => !target.startsWith('worker/') || target === 'worker/api'],
  ['worker', (target) => !target.startsWith('web/')],
]) {
  for (const file of walk(join(repo, layer))) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]/g)) {
      const spec = m[1] ?? m[2];
      const target = relative(repo, resolve(dirname(file), spec)).replace(/\.ts$/, '');
      if (!rule(target)) problems.push(`${relative(repo, file)} imports ${spec}: ${layer}/ may not import ${target}`);
    }
  }
}
if (problems.length) {
  for (const p of problems) console.error(`check-layers: ${p}`);
  console.error('check-layers: the page talks to the worker only through worker/api.ts (see Layout in README.md)');
  process.exit(1);
}
console.log('check-layers: ok');
