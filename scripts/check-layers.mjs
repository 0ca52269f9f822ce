// Runs in Node (part of `npm run typecheck`).
//
// The layer rules the compiler cannot state (README.md, Layout):
//   page (web/) → worker/api.ts → host → live update (the exec path)
//     → backend.ts → worker/qemu/ (the Emscripten module)
// - web/ imports only worker/api.ts from worker/, and worker/ never web/;
// - worker/backend.ts is the one door to worker/qemu/;
// - worker/qemu/ imports nothing above it, backend.ts nothing but api.ts
//   and worker/qemu/, live-update.ts not the host nor its parts;
// - the host's parts (the files host.ts splits its work among) never
//   import host.ts;
// - no import cycles anywhere.
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

/** file (repo-relative, no .ts) → its relative imports, same form. */
const graph = new Map();
for (const file of [...walk(join(repo, 'web')), ...walk(join(repo, 'worker'))]) {
  const src = readFileSync(file, 'utf8');
  const from = relative(repo, file).replace(/\.ts$/, '');
  const targets = [];
  for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]/g)) {
    targets.push(relative(repo, resolve(dirname(file), m[1] ?? m[2])).replace(/\.ts$/, ''));
  }
  graph.set(from, targets);
}

const inQemu = (f) => f.startsWith('worker/qemu/');
/** The host's parts: below host.ts, above the exec path. */
const hostParts = ['worker/session', 'worker/save-restore', 'worker/boot-loading', 'worker/page-link', 'worker/qemu-log'];
const rules = [
  [(f) => f.startsWith('web/'), (t) => !t.startsWith('worker/') || t === 'worker/api', 'the page talks to the worker only through worker/api.ts'],
  [(f) => f.startsWith('worker/'), (t) => !t.startsWith('web/'), 'the worker never imports the page'],
  [(f) => f.startsWith('worker/') && !inQemu(f) && f !== 'worker/backend', (t) => !inQemu(t), 'worker/backend.ts is the one door to worker/qemu/'],
  [inQemu, (t) => inQemu(t), 'worker/qemu/ is the bottom layer: it imports nothing above it'],
  [(f) => f === 'worker/backend', (t) => inQemu(t) || t === 'worker/api', 'the backend imports only worker/qemu/ and the contract'],
  [(f) => f === 'worker/live-update', (t) => t !== 'worker/host' && !hostParts.includes(t), 'the exec path sits below the host and its parts'],
  [(f) => hostParts.includes(f), (t) => t !== 'worker/host', "the host's parts sit below host.ts"],
];

const problems = [];
for (const [from, targets] of graph) {
  for (const t of targets) {
    for (const [applies, ok, why] of rules) {
      if (applies(from) && !ok(t)) problems.push(`${from}.ts imports ${t}: ${why}`);
    }
  }
}

// Cycles: depth-first search over the graph.
const state = new Map(); // undefined: new, 1: on the stack, 2: done
const stack = [];
const visit = (f) => {
  state.set(f, 1);
  stack.push(f);
  for (const t of graph.get(f) ?? []) {
    if (!graph.has(t)) continue;
    if (state.get(t) === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(t)), t].join(' → ')}`);
    else if (!state.get(t)) visit(t);
  }
  stack.pop();
  state.set(f, 2);
};
for (const f of graph.keys()) if (!state.get(f)) visit(f);

if (problems.length) {
  for (const p of problems) console.error(`check-layers: ${p}`);
  process.exit(1);
}
console.log(`check-layers: ok (${graph.size} files, no cycles)`);
