// npm run smoke — runs in Node (main thread hosts the QEMU module; QEMU's
// pthreads are worker_threads). Loads the committed artifacts (unpacked by
// `npm run artifacts` into wasm/out/, or CPR_ARTIFACTS), boots each guest with the real QEMU,
// runs a command in its shell and a monitor command, and prints boot times.
// Also checks that a QEMU start-up error reaches the user (issue 2, item 3).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { GUESTS, READY_LINE, guestArgv, type GuestName } from '../../worker/qemu/guests';
import { consoleArgv } from '../../worker/qemu/consoles';
import { launchQemu, type QemuInstance } from '../../worker/qemu/instance';
import { ARTIFACTS } from '../artifacts';
import { SHELL_PROMPT_LINE } from '../shell-prompt';
import { Transcript } from './transcript';

const BOOT_TIMEOUT_MS = 300_000;
const build = 'v1';

const encoder = new TextEncoder();

function files(paths: Record<string, string>): Record<string, Uint8Array> {
  return Object.fromEntries(Object.entries(paths).map(([artifact, fsPath]) => [fsPath, readFileSync(`${ARTIFACTS}/${artifact}`)]));
}

function urls(guest: GuestName): { jsUrl: string; wasmUrl: string } {
  const base = `${ARTIFACTS}/qemu/${build}/${GUESTS[guest].binary}`;
  return { jsUrl: pathToFileURL(`${base}.js`).href, wasmUrl: pathToFileURL(`${base}.wasm`).href };
}

let passed = 0;
let failed = 0;
async function check(name: string, body: () => Promise<void>): Promise<void> {
  // Named before it runs: a check that never ends is cut by its cap (run.ts).
  console.log(`...  ${name}`);
  try {
    await body();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function bootGuest(guest: GuestName): Promise<void> {
  const serial = new Transcript();
  const monitor = new Transcript();
  const log: string[] = [];
  const launch = guestArgv(guest, 128);
  const t0 = Date.now();
  let qemu: QemuInstance | undefined;
  try {
    qemu = await launchQemu({
      ...urls(guest),
      argv: launch.argv,
      files: files(launch.files),
      onConsole: (c, b) => (c === 'serial' ? serial.pushBytes(b) : c === 'monitor' ? monitor.pushBytes(b) : undefined),
      onLog: (line) => log.push(line),
    });
    const exitedEarly = qemu.exited.then((e) => {
      throw new Error(`QEMU exited with status ${e.status}: ${log.join(' | ') || e.message || 'no message'}`);
    });
    await Promise.race([serial.waitFor(READY_LINE, BOOT_TIMEOUT_MS), exitedEarly]);
    const readyMs = Date.now() - t0;
    await Promise.race([serial.waitFor(SHELL_PROMPT_LINE, 60_000), exitedEarly]);
    const promptMs = Date.now() - t0;
    const mark = serial.text.length;
    qemu.write('serial', encoder.encode('echo answer=$((6*7))\n'));
    await Promise.race([serial.waitFor('answer=42', 60_000, mark), exitedEarly]);
    // The shell's read builtin (what every "while read" loop and the file
    // agent use): on the 32-bit guests it needs the kernel's 32-bit time
    // syscalls, which tinyconfig leaves out (wasm/guest/arm.config).
    const rmark = serial.text.length;
    qemu.write('serial', encoder.encode('echo x | { read -r v && echo "read=$v-ok"; }\n'));
    await Promise.race([serial.waitFor('read=x-ok', 60_000, rmark), exitedEarly]);
    const mmark = monitor.text.length;
    qemu.write('monitor', encoder.encode('info version\n'));
    await Promise.race([monitor.waitFor(/10\.2\.2 \(cpr-playground v1\)/, 30_000, mmark), exitedEarly]);
    console.log(`     ${guest}: ready line after ${(readyMs / 1000).toFixed(1)} s, shell prompt after ` +
      `${(promptMs / 1000).toFixed(1)} s (Node ${process.version}, QEMU ${build})`);
    qemu.write('monitor', encoder.encode('quit\n'));
    const exit = await Promise.race([qemu.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('QEMU did not quit')), 30_000))]);
    if (exit.status !== 0) throw new Error(`quit ended QEMU with status ${exit.status}`);
  } catch (err) {
    await qemu?.kill();
    const tail = serial.text.slice(-600);
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- serial tail ---\n${tail}` +
      `\n--- monitor ---\n${monitor.text.slice(-400)}\n--- log ---\n${log.slice(-5).join('\n')}`);
  }
}

async function startupErrorReachesUser(): Promise<void> {
  // -M virt's default NIC needs a network backend, and none is built in:
  // QEMU must say so rather than exit silently.
  const log: string[] = [];
  const qemu = await launchQemu({
    ...urls('arm'),
    argv: ['-M', 'virt', '-display', 'none', ...consoleArgv()],
    files: {},
    onConsole: () => undefined,
    onLog: (line) => log.push(line),
  });
  const exit = await Promise.race([qemu.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('QEMU did not exit')), 60_000))]);
  if (exit.status === 0) throw new Error('QEMU started although its default NIC has no backend');
  const text = log.join('\n');
  if (!/qemu-system-arm: .+/.test(text)) {
    throw new Error(`QEMU exited with status ${exit.status} but printed no error (log: ${JSON.stringify(text)})`);
  }
  console.log(`     error shown: ${text.split('\n').find((l) => l.startsWith('qemu-system-arm:'))}`);
}

const only = process.argv.slice(2);
const want = (name: string): boolean => only.length === 0 || only.includes(name);
if (want('error')) await check('a QEMU start-up error reaches the user', startupErrorReachesUser);
for (const guest of Object.keys(GUESTS) as GuestName[]) {
  if (want(guest)) await check(`${guest} guest boots to a shell and answers`, () => bootGuest(guest));
}
console.log(`smoke: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
