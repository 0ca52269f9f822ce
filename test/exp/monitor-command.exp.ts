// Runs one monitor command on a paused arm QEMU in Node and prints its output,
// or the wasm stack if it traps (map function indices with a build linked
// with EMCC_CFLAGS=--emit-symbol-map). Usage:
//   node --import tsx test/exp/monitor-command.exp.ts ['info mtree']
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { guestArgv } from '../../worker/qemu/guests';
import { launchQemu } from '../../worker/qemu/instance';

const out = fileURLToPath(new URL('../../wasm/out/', import.meta.url));
const launch = guestArgv('arm', 128);
const files = Object.fromEntries(Object.entries(launch.files).map(([a, p]) => [p, readFileSync(out + a)]));
let mon = '';
const log: string[] = [];
const q = await launchQemu({
  jsUrl: pathToFileURL(`${out}qemu/v1/qemu-system-arm.js`).href,
  wasmUrl: pathToFileURL(`${out}qemu/v1/qemu-system-arm.wasm`).href,
  argv: [...launch.argv, '-S'], files,
  onConsole: (c, b) => { if (c === 'monitor') mon += new TextDecoder().decode(b); },
  onLog: (l) => { log.push(l); console.log('LOG', l); },
});
while (!mon.includes('(qemu)')) await new Promise((r) => setTimeout(r, 200));
q.write('monitor', new TextEncoder().encode(`${process.argv[2] ?? 'info mtree'}\n`));
await new Promise((r) => setTimeout(r, 8000));
console.log(mon.slice(-800));
await q.kill();
process.exit(0);
