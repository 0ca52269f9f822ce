// npm run smoke (after smoke.ts) — runs in Node (main thread hosts the QEMU
// module; QEMU's pthreads are worker_threads). The refusals of live update
// (cpr-exec) with the real QEMU build and the real arm guest, each QEMU on
// a fresh shared Memory (createSharedMemory) as the playground runs it:
//
// refuse    `migrate` in mode cpr-exec is refused before the VM stops, with
//           QEMU's reason (RAM not shared; a non-migratable device), and
//           the guest keeps running (wasm/patches/0011).
// only      -only-migratable-modes cpr-exec: a configuration that could not
//           live-update exits at start with status 1 and the reason; one
//           that can starts and boots; an unknown mode is named (0014).
// proposal  the interface first proposed on qemu-devel (memory-backend-file
//           on /dev/shm, -machine memfd-alloc=on, cpr-exec-args; 0012,
//           0013): the host refuses the exec (no such build), QEMU reports
//           it and runs the VM again.
//
// The accepted exec (a live update to v2) is the Chromium e2e test's
// (test/e2e/live-update.e2e.ts). Artifacts come from wasm/out (`npm run
// artifacts`) or CPR_ARTIFACTS; without a live-update build the file says
// so and skips, as the live-update e2e tests do.
//
//   node --import tsx test/smoke/cpr-refusals.ts [refuse] [only] [proposal]
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { GUESTS, READY_LINE, guestArgv } from '../../worker/qemu/guests';
import { launchQemu, type ExecRequest, type QemuInstance } from '../../worker/qemu/instance';
import { buildLayoutProblem, createSharedMemory } from '../../worker/qemu/memory';
import { ARTIFACTS } from '../artifacts';
import { SHELL_PROMPT_LINE } from '../shell-prompt';
import { Transcript } from './transcript';

const BUILD = 'v1';
const RAM_MIB = 128;
const BOOT_TIMEOUT_MS = 300_000;
const STEP_TIMEOUT_MS = 60_000;
const LAUNCH_TIMEOUT_MS = 120_000;
// Emscripten's errno value, not Linux's 2 (which Emscripten's strerror()
// calls "Permission denied"); QEMU prints strerror() of it.
const ENOENT = 44;

const encoder = new TextEncoder();

function qemuBase(build: string): string {
  return `${ARTIFACTS}/qemu/${build}/${GUESTS.arm.binary}`;
}

/** Why these artifacts cannot run this file, or undefined. */
function unavailable(): string | undefined {
  const js = `${qemuBase(BUILD)}.js`;
  if (!existsSync(js)) return `${js} is missing (npm run artifacts, or CPR_ARTIFACTS)`;
  return buildLayoutProblem(`${GUESTS.arm.binary}@${BUILD}`, readFileSync(js, 'utf8'));
}

/** The host's answer to "which build is argv[0]": as the worker does,
 * a registry name whose artifacts exist, else ENOENT. */
function buildOf(argv0: string): string | undefined {
  const m = /^qemu-system-arm(?:@(v\d+))?$/.exec(argv0.split('/').pop() ?? '');
  const build = m ? (m[1] ?? 'v1') : undefined;
  return build && existsSync(`${qemuBase(build)}.js`) ? build : undefined;
}

/** The arm guest's command line with `extra` options added. */
function armArgv(extra: string[]): string[] {
  return [...guestArgv('arm', RAM_MIB).argv, ...extra];
}
function armFiles(): Record<string, Uint8Array> {
  return Object.fromEntries(Object.entries(GUESTS.arm.files).map(([artifact, path]) => [path, readFileSync(`${ARTIFACTS}/${artifact}`)]));
}

// Guest RAM configurations.
const UNSHARED_RAM = ['-object', `memory-backend-ram,id=ram0,size=${RAM_MIB}M`, '-machine', 'memory-backend=ram0',
  '-machine', 'aux-ram-share=on'];
const MEMFD_RAM = ['-object', `memory-backend-memfd,id=ram0,size=${RAM_MIB}M`, '-machine', 'memory-backend=ram0',
  '-machine', 'aux-ram-share=on'];
const UNMIGRATABLE_DEVICE = ['-object', 'cryptodev-backend-builtin,id=cr0', '-device', 'virtio-crypto-device,cryptodev=cr0'];

interface Running {
  qemu: QemuInstance;
  serial: Transcript;
  monitor: Transcript;
  log: Transcript;
  execs: ExecRequest[];
}

function start(argv: string[]): Promise<Running> {
  const serial = new Transcript();
  const monitor = new Transcript();
  const log = new Transcript();
  const execs: ExecRequest[] = [];
  const base = qemuBase(BUILD);
  const launched = launchQemu({
    jsUrl: pathToFileURL(`${base}.js`).href,
    wasmUrl: pathToFileURL(`${base}.wasm`).href,
    memory: createSharedMemory(),
    argv,
    files: armFiles(),
    onConsole: (c, b) => (c === 'serial' ? serial.pushBytes(b) : c === 'monitor' ? monitor.pushBytes(b) : undefined),
    onLog: (line) => log.push(`${line}\n`),
    onExec: (request) => {
      execs.push(request);
      return buildOf(request.argv[0] ?? '') ? 0 : -ENOENT;
    },
  });
  // Seen once, on a machine busy with a QEMU build: a QEMU that exits at
  // start left launchQemu() pending for good. A case fails then; the run
  // goes on (the browser's instance client has its own launch deadline).
  const late = new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error(`QEMU's start did not return within ${LAUNCH_TIMEOUT_MS / 1000} s; log: ${log.text.trim()}`)), LAUNCH_TIMEOUT_MS).unref();
  });
  return Promise.race([launched, late]).then((qemu) => ({ qemu, serial, monitor, log, execs }));
}

/** Rejects when QEMU exits: races every wait of a case against it. */
function untilExit(r: Running): Promise<never> {
  return r.qemu.exited.then((e) => {
    throw new Error(`QEMU exited with status ${e.status}: ${e.message ?? r.log.text.trim().split('\n').slice(-3).join(' | ')}`);
  });
}

async function boot(r: Running): Promise<void> {
  await Promise.race([r.serial.waitFor(READY_LINE, BOOT_TIMEOUT_MS), untilExit(r)]);
  await Promise.race([r.serial.waitFor(SHELL_PROMPT_LINE, STEP_TIMEOUT_MS), untilExit(r)]);
  await Promise.race([r.monitor.waitFor(/\(qemu\) $/, STEP_TIMEOUT_MS), untilExit(r)]);
}

/** Runs `cmd` in the guest shell and waits for `expect` in its output. */
async function shell(r: Running, cmd: string, expect: string | RegExp): Promise<void> {
  const mark = r.serial.text.length;
  r.qemu.write('serial', encoder.encode(`${cmd}\n`));
  await Promise.race([r.serial.waitFor(expect, STEP_TIMEOUT_MS, mark + cmd.length), untilExit(r)]);
}

/** Runs an HMP command; returns its output (no echo, no prompt). */
async function hmp(r: Running, cmd: string): Promise<string> {
  const mark = r.monitor.text.length;
  r.qemu.write('monitor', encoder.encode(`${cmd}\n`));
  const end = await Promise.race([r.monitor.waitFor(/\(qemu\) $/, STEP_TIMEOUT_MS, mark), untilExit(r)]);
  const lines = r.monitor.text.slice(mark, end).replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '').split('\n');
  return lines.slice(1).join('\n').trim(); // the first line is the echo of cmd
}

async function stop(r: Running): Promise<void> {
  r.qemu.write('monitor', encoder.encode('quit\n'));
  const quit = await Promise.race([r.qemu.exited, new Promise<null>((res) => setTimeout(() => res(null), 30_000))]);
  if (!quit) await r.qemu.kill();
}

function expect(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(what);
}

let passed = 0;
let failed = 0;
async function check(name: string, body: (seen: (line: string) => void) => Promise<void>): Promise<void> {
  // Named before it runs: a check that never ends is cut by its cap (run.ts).
  console.log(`...  ${name}`);
  const lines: string[] = [];
  try {
    await body((line) => lines.push(line));
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const line of lines) console.log(`     ${line}`);
}

/** Starts a guest, lets it boot, runs `body`, ends QEMU; on failure adds
 * the transcripts' tails to the error. */
async function withGuest(argv: string[], body: (r: Running) => Promise<void>): Promise<void> {
  const r = await start(argv);
  try {
    await boot(r);
    await body(r);
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- serial tail ---\n${r.serial.text.slice(-400)}` +
      `\n--- monitor tail ---\n${r.monitor.text.slice(-400)}\n--- log tail ---\n${r.log.text.slice(-400)}`);
  } finally {
    await stop(r);
  }
}

async function refusedBeforeStop(ram: string[], reason: RegExp, seen: (line: string) => void): Promise<void> {
  await withGuest(armArgv(ram), async (r) => {
    await hmp(r, 'migrate_set_parameter mode cpr-exec');
    await hmp(r, `migrate_set_parameter cpr-exec-command qemu-system-arm@v2 ${armArgv([...ram, '-incoming', 'file:/vm.state']).join(' ')}`);
    const out = await hmp(r, 'migrate -d file:/vm.state');
    seen(`migrate said: ${out}`);
    expect(reason.test(out), `migrate was not refused with ${String(reason)}: ${JSON.stringify(out)}`);
    // Refused in migrate_prepare(): before the file is opened, the VM
    // stopped or anything exec'd.
    expect(r.qemu.readFile('/vm.state') === null, 'the migration file was created');
    expect(r.execs.length === 0, `QEMU exec'd ${r.execs[0]?.argv[0]}`);
    const status = await hmp(r, 'info status');
    expect(status === 'VM status: running', `info status: ${status}`);
    await shell(r, 'echo still-$((3*3))', 'still-9');
  });
}

async function caseRefuse(): Promise<void> {
  await check('refuse: guest RAM without share=on: migrate in mode cpr-exec is refused, the guest runs on', (seen) =>
    refusedBeforeStop(UNSHARED_RAM, /Memory region ram0 is not compatible with CPR\. share=on is required for memory-backend objects/, seen));
  await check('refuse: a non-migratable device (virtio-crypto): migrate in mode cpr-exec is refused, the guest runs on', (seen) =>
    refusedBeforeStop([...MEMFD_RAM, ...UNMIGRATABLE_DEVICE], /State blocked by non-migratable device '[^']*virtio-crypto'/, seen));
}

/** QEMU must exit at start with status 1 and print `reason`. */
async function exitsAtStart(argv: string[], reason: RegExp, seen: (line: string) => void): Promise<void> {
  const r = await start(argv);
  const exit = await Promise.race([r.qemu.exited, new Promise<null>((res) => setTimeout(() => res(null), STEP_TIMEOUT_MS))]);
  if (!exit) {
    await r.qemu.kill();
    throw new Error(`QEMU did not exit at start; log: ${r.log.text.trim()}`);
  }
  const text = r.log.text.trim();
  for (const line of text.split('\n')) seen(line);
  expect(exit.status === 1, `exit status ${exit.status}, not 1 (${exit.message ?? text})`);
  expect(reason.test(text), `QEMU did not print ${String(reason)}: ${JSON.stringify(text)}`);
  expect(r.serial.text === '', 'the guest started');
}

async function caseOnly(): Promise<void> {
  const only = ['-only-migratable-modes', 'cpr-exec'];
  const refused = /disallowing migration blocker \(-only-migratable-modes\) for: Memory region \S+ is not compatible with CPR/;
  await check('only: guest RAM without share=on: QEMU exits at start with status 1 and the reason', (seen) =>
    exitsAtStart(armArgv([...UNSHARED_RAM, ...only]), refused, seen));
  await check('only: the plain guest (-m only, no shared RAM): QEMU exits at start with status 1 and the reason', (seen) =>
    exitsAtStart(armArgv(only), refused, seen));
  await check('only: main RAM shared but not auxiliary RAM (no aux-ram-share): QEMU exits at start with status 1', (seen) =>
    exitsAtStart(armArgv(['-object', `memory-backend-memfd,id=ram0,size=${RAM_MIB}M`, '-machine', 'memory-backend=ram0', ...only]), refused, seen));
  await check('only: a non-migratable device: QEMU exits at start with status 1 and the reason', (seen) =>
    exitsAtStart(armArgv([...MEMFD_RAM, ...UNMIGRATABLE_DEVICE, ...only]),
      /Device virtio-crypto-device is not migratable, but --only-migratable or -only-migratable-modes was specified/, seen));
  await check('only: an unknown mode is named, with the modes there are', (seen) =>
    exitsAtStart(armArgv([...MEMFD_RAM, '-only-migratable-modes', 'cpr-exec,cpr-exce']),
      /unknown migration mode 'cpr-exce'\nMigration modes are: normal cpr-reboot cpr-transfer cpr-exec/, seen));
  await check('only: memory-backend-memfd and aux-ram-share=on: the guest boots and answers', () =>
    withGuest(armArgv([...MEMFD_RAM, ...only]), (r) => shell(r, 'echo booted-$((4*4))', 'booted-16')));
  await check("only: the playground's live-update configuration (sharedRamArgv): the guest boots and answers", () =>
    withGuest([...guestArgv('arm', RAM_MIB, { liveUpdate: true }).argv, ...only], (r) => shell(r, 'echo booted-$((5*5))', 'booted-25')));
}

async function caseProposal(): Promise<void> {
  await check('proposal: memory-backend-file on /dev/shm, memfd-alloc=on, cpr-exec-args; the host refuses the exec, the VM runs again', (seen) => {
    // As in the first proposal, with QEMU's name changed to a build name
    // the host does not have; /dev/shm is backed by memfd regions.
    const ram = ['-object', `memory-backend-file,id=ram0,size=${RAM_MIB}M,mem-path=/dev/shm/ram0,share=on`,
      '-machine', 'memory-backend=ram0', '-machine', 'memfd-alloc=on'];
    return withGuest(armArgv(ram), async (r) => {
      await hmp(r, 'migrate_set_parameter mode cpr-exec');
      const set = await hmp(r, `migrate_set_parameter cpr-exec-args qemu-system-arm@v9 ${armArgv([...ram, '-incoming', 'file:/vm.state']).join(' ')}`);
      expect(set === '', `migrate_set_parameter cpr-exec-args said: ${set}`);
      const params = await hmp(r, 'info migrate_parameters');
      expect(/^cpr-exec-command: qemu-system-arm@v9 -M virt /m.test(params), `cpr-exec-args did not set cpr-exec-command: ${params}`);
      const logMark = r.log.text.length;
      const out = await hmp(r, 'migrate -d file:/vm.state');
      expect(out === '', `migrate -d said: ${out}`);
      // The exec runs in a bottom half, where no monitor is current: QEMU
      // reports the failure on stderr. The monitor is watched too, should
      // that change.
      const failedExec = /execvp qemu-system-arm@v9 failed: No such file or directory/;
      const monitorMark = r.monitor.text.length;
      const line = await Promise.race([
        Promise.any([
          r.log.waitFor(failedExec, STEP_TIMEOUT_MS, logMark).then((at) => r.log.text.slice(at)),
          r.monitor.waitFor(failedExec, STEP_TIMEOUT_MS, monitorMark).then((at) => r.monitor.text.slice(at)),
        ]).catch(() => {
          throw new Error(`QEMU did not report the failed exec with ${String(failedExec)}; ` +
            `log: ${r.log.text.slice(logMark).trim() || '(nothing)'}`);
        }),
        untilExit(r),
      ]);
      seen(`QEMU reported: ${line.split('\n')[0]?.trim()}`);
      const request = r.execs[0];
      expect(r.execs.length === 1 && request?.argv[0] === 'qemu-system-arm@v9', `exec requests: ${JSON.stringify(r.execs.map((e) => e.argv[0]))}`);
      expect(request.open.some((o) => o.path === '/dev/shm/ram0'), `guest RAM /dev/shm/ram0 is not among the fds passed on: ${JSON.stringify(request.open)}`);
      expect(request.env.some((e) => e.startsWith('QEMU_CPR_EXEC_STATE=')), 'no QEMU_CPR_EXEC_STATE in the environment passed on');
      // QEMU restarts the VM in its exec-failure path, after the log line.
      let status = '';
      for (let i = 0; i < 100 && status !== 'VM status: running'; i++) {
        status = await hmp(r, 'info status');
        if (status !== 'VM status: running') await new Promise((res) => setTimeout(res, 200));
      }
      expect(status === 'VM status: running', `info status: ${status}`);
      const migrate = await hmp(r, 'info migrate');
      seen(`info migrate: ${migrate.split('\n').find((l) => /status/i.test(l)) ?? migrate}`);
      expect(/Status:\s*failed/i.test(migrate), `info migrate: ${migrate}`);
      await shell(r, 'echo after-$((5+5))', 'after-10');
    });
  });
}

const cases: Record<string, () => Promise<void>> = { refuse: caseRefuse, only: caseOnly, proposal: caseProposal };
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in cases));
if (unknown.length > 0) {
  console.error(`cpr-refusals: unknown case ${unknown.join(', ')}; cases: ${Object.keys(cases).join(', ')}`);
  process.exit(2);
}
const skip = unavailable();
if (skip) {
  console.log(`cpr-refusals: skipped: ${skip}`);
  process.exit(0);
}
for (const [name, run] of Object.entries(cases)) {
  if (wanted.length === 0 || wanted.includes(name)) await run();
}
console.log(`cpr-refusals: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
