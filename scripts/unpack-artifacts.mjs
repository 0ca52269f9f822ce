// Runs in Node: `npm run artifacts` (also before start, build and test).
//
// Gunzips the committed artifacts (wasm/dist/**.gz) into wasm/out/, same
// layout without .gz, plus manifest.json and NOTICE. Files whose unpacked
// sha256 already matches the manifest are skipped, so it is cheap to run
// before every start. wasm/out/ is a build product (gitignored).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = join(repo, 'wasm/dist');
const out = join(repo, 'wasm/out');

const manifestPath = join(dist, 'manifest.json');
if (!existsSync(manifestPath)) {
  console.error(
    'artifacts: wasm/dist/manifest.json is missing, so there is no QEMU to serve.\n' +
      '  wasm/dist holds the committed QEMU and guest builds; rebuild them with `npm run build:wasm`\n' +
      '  (needs root; see docs/build.md) or check out a commit that has them.',
  );
  process.exit(1);
}
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

let unpacked = 0;
let kept = 0;
for (const a of manifest.artifacts) {
  if (!a.path.endsWith('.gz')) continue;
  const target = join(out, a.path.slice(0, -3));
  if (existsSync(target) && a.rawSha256 && sha256(readFileSync(target)) === a.rawSha256) {
    kept++;
    continue;
  }
  const src = join(dist, a.path);
  if (!existsSync(src)) {
    console.error(`artifacts: wasm/dist/${a.path} is listed in the manifest but missing; run \`npm run check:wasm\``);
    process.exit(1);
  }
  const raw = gunzipSync(readFileSync(src));
  if (a.rawSha256 && sha256(raw) !== a.rawSha256) {
    console.error(`artifacts: wasm/dist/${a.path} does not unpack to its sha256 in the manifest; run \`npm run check:wasm\``);
    process.exit(1);
  }
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(`${target}.tmp`, raw);
  renameSync(`${target}.tmp`, target);
  unpacked++;
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2));
if (existsSync(join(dist, 'NOTICE'))) copyFileSync(join(dist, 'NOTICE'), join(out, 'NOTICE'));
console.log(`artifacts: wasm/out ready (${unpacked} unpacked, ${kept} up to date)`);
