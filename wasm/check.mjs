// npm run check:wasm — fails when the committed artifacts in wasm/dist do
// not match the committed recipe (build scripts, patch series, source
// checksums) or their own manifest. Runs in Node on the host; fast: it
// hashes files and never rebuilds.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = join(repo, 'wasm/dist');

// The same set as recipe_files in wasm/steps/package.sh.
const RECIPE = ['wasm/build.sh', 'wasm/lib.sh', 'wasm/steps', 'wasm/patches', 'wasm/deps-patches', 'wasm/emscripten',
  'wasm/guest', 'wasm/snapshot', 'wasm/sources.lock', 'wasm/guest.lock'];

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

function walk(rel) {
  const abs = join(repo, rel);
  if (!existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).flatMap((name) => walk(`${rel}/${name}`));
}

const problems = [];
if (!existsSync(join(dist, 'manifest.json'))) {
  console.error('check:wasm: wasm/dist/manifest.json is missing: run `npm run build:wasm` (as root) and commit wasm/dist');
  process.exit(1);
}
const manifest = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8'));

// 1. The recipe the artifacts were built from is the committed one.
const files = RECIPE.flatMap(walk).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const current = Object.fromEntries(files.map((f) => [f, sha256(join(repo, f))]));
const recipeHash = createHash('sha256')
  .update(files.map((f) => `${f} ${current[f]}\n`).join(''))
  .digest('hex');
if (recipeHash !== manifest.recipe.sha256) {
  const built = manifest.recipe.files;
  const changed = [...new Set([...Object.keys(built), ...files])]
    .filter((f) => built[f] !== current[f])
    .map((f) => (!(f in built) ? `added ${f}` : !(f in current) ? `removed ${f}` : `changed ${f}`));
  problems.push(`the recipe changed since wasm/dist was built (${changed.join(', ') || 'file list order'}): ` +
    'run `npm run build:wasm` (as root) and commit wasm/dist');
}

// 2. Every artifact is the one the manifest names, and nothing else is there.
const listed = new Set(['manifest.json', 'NOTICE']);
for (const a of manifest.artifacts) {
  listed.add(a.path);
  const path = join(dist, a.path);
  if (!existsSync(path)) problems.push(`missing artifact wasm/dist/${a.path}`);
  else if (sha256(path) !== a.sha256) problems.push(`wasm/dist/${a.path} does not match its sha256 in the manifest`);
}
for (const f of walk('wasm/dist')) {
  const rel = relative('wasm/dist', f);
  if (!listed.has(rel)) problems.push(`wasm/dist/${rel} is not in the manifest`);
}

// 3. Every QEMU build the recipe names (QEMU_BUILDS in wasm/steps/qemu.sh)
// is there, for every target, and the manifest lists the same builds.
const qemuSh = readFileSync(join(repo, 'wasm/steps/qemu.sh'), 'utf8');
const recipeBuilds = (qemuSh.match(/^QEMU_BUILDS="([^"]*)"/m)?.[1] ?? '').split(/\s+/).filter(Boolean);
// The targets of every wasm host (QEMU_TARGETS_wasm32, QEMU_TARGETS_wasm64).
const targets = [...qemuSh.matchAll(/^QEMU_TARGETS_\w+="([^"]*)"/gm)].flatMap((m) => m[1].split(/\s+/)).filter(Boolean)
  .map((t) => `qemu-system-${t.replace(/-softmmu$/, '')}`);
if (targets.length === 0) problems.push('wasm/steps/qemu.sh names no QEMU_TARGETS_<host>: check:wasm cannot tell which builds to expect');
const manifestBuilds = manifest.qemu?.builds ?? [];
if (recipeBuilds.join(' ') !== manifestBuilds.join(' ')) {
  problems.push(`wasm/steps/qemu.sh builds "${recipeBuilds.join(' ')}" but the manifest lists "${manifestBuilds.join(' ')}": ` +
    'run `npm run build:wasm` (as root) and commit wasm/dist');
}
const paths = new Set(manifest.artifacts.map((a) => a.path));
for (const b of recipeBuilds) {
  for (const t of targets) {
    for (const ext of ['js', 'wasm']) {
      if (!paths.has(`qemu/${b}/${t}.${ext}.gz`)) problems.push(`the manifest has no qemu/${b}/${t}.${ext}.gz (build ${b})`);
    }
  }
}

// 4. Every guest has its booted snapshot (the page starts from it).
const packageSh = readFileSync(join(repo, 'wasm/steps/package.sh'), 'utf8');
const guests = (packageSh.match(/^GUEST_NAMES="([^"]*)"/m)?.[1] ?? '').split(/\s+/).filter(Boolean);
if (guests.length === 0) problems.push('wasm/steps/package.sh names no GUEST_NAMES: check:wasm cannot tell which snapshots to expect');
for (const guest of guests) {
  if (!paths.has(`snapshots/${guest}.cprsnap.gz`)) problems.push(`the manifest has no snapshots/${guest}.cprsnap.gz (the ${guest} guest's booted snapshot)`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(`check:wasm: ${p}`);
  process.exit(1);
}
console.log(`check:wasm: ok — ${manifest.artifacts.length} artifacts (QEMU builds ${recipeBuilds.join(', ')}) ` +
  `match recipe ${recipeHash.slice(0, 12)} ` +
  `(emcc ${manifest.toolchain.emcc}, patch series ${manifest.patchSeries.sha256.slice(0, 12)})`);
