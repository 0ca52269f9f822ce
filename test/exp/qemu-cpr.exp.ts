// Experiment for the QEMU side of issue 4 (not a test of the suite): checks
// the patch series (wasm/patches 0004-0015) with the real wasm builds, in
// Node, whose main thread hosts the QEMU module (QEMU's pthreads are
// worker_threads). The host side of exec is the prototype's (branch
// wip/live-update, test/exp/live-update.exp.ts): end the instance, keep the
// Memory and the memfds, clear below the heap limit, start the build named
// by argv[0] with the CPR environment and the state file.
//
//   node --import tsx test/exp/qemu-cpr.exp.ts <case>
//
// update    arm guest, main RAM in memory-backend-memfd, aux-ram-share=on;
//           cpr-exec to qemu-system-arm@v2 typed into the monitor; the
//           guest keeps its tmpfs file and shell, `info version` names v2.
// refuse    `migrate` in mode cpr-exec is refused before the VM stops, with
//           QEMU's reason: RAM not shared; a device with a migration blocker.
// only      -only-migratable-modes cpr-exec: a configuration that could not
//           live-update exits at start with status 1 and the reason; one
//           that can starts; an unknown mode is named.
// proposal  the interface first proposed on qemu-devel: memory-backend-file
//           on /dev/shm, -machine memfd-alloc=on, cpr-exec-args; the exec
//           is refused by the host (no such build) and QEMU runs the VM again.
//
// QEMU builds are read from $QEMU_OUT/<build>/ (default /work/hA-work/out/),
// guests from wasm/out/ (npm run artifacts).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { JsCharDevice } from '../../worker/qemu/chardev';
import { MONITOR_DEVICE, SERIAL_DEVICE, consoleArgv } from '../../worker/qemu/consoles';
import { GUESTS, READY_LINE } from '../../worker/qemu/guests';

const QEMU_OUT = process.env.QEMU_OUT ?? '/work/hA-work/out/';
const GUEST_OUT = fileURLToPath(new URL('../../wasm/out/', import.meta.url));
const HEAP_LIMIT = 0x40000000; // memfd.js CPR_MEMFD_HEAP_LIMIT
const RAM_MIB = 128;
const MARK = 'CPRMARK42XYZ';
const ENOENT = 2;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** What this script uses of the Emscripten module (MODULARIZE instance). */
interface QemuModule {
  FS: {
    mkdirTree(path: string): void;
    writeFile(path: string, data: Uint8Array): void;
    readFile(path: string): Uint8Array;
    stat(path: string): { size: number };
  };
  ENV: Record<string, string>;
  PThread?: { terminateAllThreads(): void };
  onExec?: (argv: string[], env: string[]) => number;
  cprMemfdAdopt(): void;
  cprMemfdState(): { log: string[] };
  cprMemfdSnapshot(): Array<{ fd: number; file: number }>;
  cprRetire(): void;
}
type Factory = (options: Record<string, unknown>) => Promise<QemuModule>;

class Transcript {
  text = '';
  push(b: Uint8Array): void {
    this.text += dec.decode(b, { stream: true });
  }
  async waitFor(p: string | RegExp, ms: number, from = 0): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const rest = this.text.slice(from);
      if (typeof p === 'string' ? rest.includes(p) : p.test(rest)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timeout waiting for ${String(p)}; tail: ${JSON.stringify(this.text.slice(-400))}`);
  }
}

const memory = new WebAssembly.Memory({ initial: 32768, maximum: 32768, shared: true });
const u8 = new Uint8Array(memory.buffer);
const t0 = Date.now();
const ms = (): string => `${((Date.now() - t0) / 1000).toFixed(2)} s`;
const failures: string[] = [];
function check(ok: boolean, what: string): void {
  console.log(`[check] ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

const guestFiles: Record<string, Uint8Array> = Object.fromEntries(
  Object.entries(GUESTS.arm.files).map(([a, p]) => [p, readFileSync(GUEST_OUT + a)]));

/** The arm guest's command line with the given RAM and extra options. */
function argsFor(ram: string[], extra: string[] = []): string[] {
  return [...GUESTS.arm.machine, '-m', String(RAM_MIB), ...ram, '-nodefaults', '-nic', 'none',
    '-display', 'none', ...consoleArgv(), '-append', 'console=ttyAMA0', ...extra];
}
const MEMFD_RAM = ['-object', `memory-backend-memfd,id=ram0,size=${RAM_MIB}M`, '-machine', 'memory-backend=ram0',
  '-machine', 'aux-ram-share=on'];

interface Running {
  module: Promise<QemuModule>;
  serial: Transcript;
  monitor: Transcript;
  sdev: JsCharDevice;
  mdev: JsCharDevice;
  log: string[];
  exited: Promise<number>;
}

/** Parses "qemu-system-arm@v2" into the output dir of that build. */
function buildDir(name: string): string | undefined {
  const m = /^qemu-system-arm(?:@(v\d+))?$/.exec(name);
  return m ? `${QEMU_OUT}${m[1] ?? 'v1'}/` : undefined;
}

function start(build: string, argv: string[], opts: { env?: Record<string, string>; adopt?: boolean;
  files?: Record<string, Uint8Array>; onExec?: (argv: string[], env: string[]) => number } = {}): Running {
  const dir = buildDir(build);
  if (!dir) throw new Error(`no build ${build}`);
  const serial = new Transcript();
  const monitor = new Transcript();
  const sdev = new JsCharDevice(SERIAL_DEVICE, (b) => serial.push(b));
  const mdev = new JsCharDevice(MONITOR_DEVICE, (b) => monitor.push(b));
  const log: string[] = [];
  let onExit: (s: number) => void = () => {};
  const exited = new Promise<number>((r) => { onExit = r; });
  const module = import(pathToFileURL(`${dir}qemu-system-arm.js`).href).then((glue: { default: Factory }) => glue.default({
    thisProgram: 'qemu-system-arm',
    arguments: argv,
    wasmMemory: memory,
    locateFile: (p: string) => dir + (p.endsWith('.wasm') ? 'qemu-system-arm.wasm' : p),
    print: (l: string) => { log.push(l); console.log('[qemu]', l); },
    printErr: (l: string) => { log.push(l); console.log('[qemu]', l); },
    onExit: (s: number) => { console.log(`[host] exit ${s} at ${ms()}`); onExit(s); },
    onAbort: (w: unknown) => console.log(`[host] abort ${String(w)}`),
    onExec: opts.onExec,
    preRun: [(m: QemuModule) => {
      if (opts.adopt) m.cprMemfdAdopt();
      for (const [k, v] of Object.entries(opts.env ?? {})) m.ENV[k] = v;
      for (const [p, d] of Object.entries({ ...guestFiles, ...opts.files })) {
        m.FS.mkdirTree(p.slice(0, p.lastIndexOf('/')) || '/');
        m.FS.writeFile(p, d);
      }
      sdev.install(m.FS as never, 64);
      mdev.install(m.FS as never, 65);
    }],
  }));
  return { module, serial, monitor, sdev, mdev, log, exited };
}

function findAll(needle: string, from: number, to: number): number[] {
  const n = enc.encode(needle);
  const hits: number[] = [];
  const view = u8.subarray(from, to);
  const first = n[0] ?? 0;
  let i = view.indexOf(first);
  while (i >= 0 && hits.length < 8) {
    let ok = true;
    for (let j = 1; j < n.length; j++) if (view[i + j] !== n[j]) { ok = false; break; }
    if (ok) hits.push(from + i);
    i = view.indexOf(first, i + 1);
  }
  return hits;
}

async function shell(r: Running, cmd: string, expect: string | RegExp, timeout = 60_000): Promise<void> {
  const mark = r.serial.text.length;
  r.sdev.input(enc.encode(cmd + '\n'));
  await r.serial.waitFor(expect, timeout, mark);
}

async function hmp(r: Running, cmd: string, expect: string | RegExp = /\(qemu\) $/): Promise<string> {
  const mark = r.monitor.text.length;
  r.mdev.input(enc.encode(cmd + '\n'));
  await r.monitor.waitFor(expect, 60_000, mark + cmd.length);
  return r.monitor.text.slice(mark + cmd.length).replace(/\x1b\[[0-9]*[A-Za-z]/g, '').replace(/\r/g, '').replace(/\(qemu\) $/, '').trim();
}

async function boot(r: Running): Promise<void> {
  await r.serial.waitFor(READY_LINE, 300_000);
  await r.serial.waitFor('guest:~# ', 60_000);
  await r.monitor.waitFor(/\(qemu\) $/, 60_000);
  console.log(`[host] guest ready at ${ms()}`);
}

async function end(r: Running): Promise<void> {
  (await r.module).PThread?.terminateAllThreads();
}

/** The prototype's exec host: returns the new instance once it exists. */
interface ExecTiming { execAt: number; teardownMs: number; clearMs: number; instantiateMs: number }

function execHost(old: Running, accept: (argv0: string) => boolean): { next: Promise<Running>; timing: ExecTiming } {
  const timing: ExecTiming = { execAt: 0, teardownMs: 0, clearMs: 0, instantiateMs: 0 };
  let resolveNext: (r: Running) => void = () => {};
  let rejectNext: (e: unknown) => void = () => {};
  const next = new Promise<Running>((res, rej) => { resolveNext = res; rejectNext = rej; });
  void old.module.then((m) => {
    m.onExec = (argv: string[], env: string[]): number => {
      timing.execAt = Date.now();
      console.log(`[host] exec ${JSON.stringify(argv.slice(0, 3))}... ${env.filter((e) => e.startsWith('QEMU_CPR')).join(' ')}`);
      const target = argv[0] ?? '';
      if (!accept(target) || !buildDir(target)) return -ENOENT; // QEMU reports it and runs the VM again
      const open = m.cprMemfdSnapshot();
      const envObj = Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
      setTimeout(() => void (async () => {
        const state = m.FS.readFile('/vm.state');
        const t1 = Date.now();
        m.PThread?.terminateAllThreads();
        m.cprRetire();
        const t2 = Date.now();
        u8.fill(0, 0, HEAP_LIMIT);
        const t3 = Date.now();
        const n = start(target, argv.slice(1), { env: envObj, adopt: true, files: { '/vm.state': state } });
        await n.module;
        timing.teardownMs = t2 - t1;
        timing.clearMs = t3 - t2;
        timing.instantiateMs = Date.now() - t3;
        console.log(`[host] open memfds ${JSON.stringify(open)}; vm.state ${state.length} bytes; ` +
          `teardown ${timing.teardownMs} ms, clear 1 GiB ${timing.clearMs} ms, instantiate ${timing.instantiateMs} ms`);
        resolveNext(n);
      })().catch(rejectNext), 0);
      return 0;
    };
  });
  return { next, timing };
}

async function waitRunning(r: Running, timeout = 60_000): Promise<string> {
  const tEnd = Date.now() + timeout;
  for (;;) {
    const out = await hmp(r, 'info status');
    if (/running/.test(out)) return out;
    if (Date.now() > tEnd) throw new Error(`not running: ${out}; log: ${r.log.slice(-5).join(' | ')}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function caseUpdate(): Promise<void> {
  const a = start('qemu-system-arm@v1', argsFor(MEMFD_RAM));
  await boot(a);
  check((await hmp(a, 'info version')).includes('cpr-playground v1'), 'before: info version names v1');
  await shell(a, 'echo CPRMARK$((6*7))XYZ > /tmp/mark; sleep 1000 & echo pid-$!', /pid-\d+/);
  const pid = /pid-(\d+)/.exec(a.serial.text.slice(-40))?.[1];
  const high = findAll(MARK, HEAP_LIMIT, memory.buffer.byteLength);
  check(high.length > 0 && findAll(MARK, 0, HEAP_LIMIT).length === 0,
    `guest RAM (tmpfs marker) above the heap limit only: ${high.map((x) => '0x' + x.toString(16)).join(' ')}`);
  console.log('[host] memfds:', (await a.module).cprMemfdState().log.filter((l) => l.startsWith('mmap')).join('; '));

  const host = execHost(a, () => true);
  const cmd = `qemu-system-arm@v2 ${argsFor(MEMFD_RAM, ['-incoming', 'file:/vm.state']).join(' ')}`;
  console.log(await hmp(a, 'migrate_set_parameter mode cpr-exec'));
  console.log(await hmp(a, `migrate_set_parameter cpr-exec-command ${cmd}`));
  const tMig = Date.now();
  a.mdev.input(enc.encode('migrate -d file:/vm.state\n'));
  const b = await Promise.race([host.next, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(
    `no exec; monitor: ${a.monitor.text.slice(-500)}`)), 120_000))]);
  await waitRunning(b);
  const pause = Date.now() - tMig;
  console.log(`[host] migrate -> exec ${host.timing.execAt - tMig} ms; running on v2 ${Date.now() - host.timing.execAt} ms after exec ` +
    `(pause incl. state save ${pause} ms, loaded machine)`);
  const version = await hmp(b, 'info version');
  console.log(`[host] info version after: ${version}`);
  check(version.includes('cpr-playground v2'), 'after: info version names v2');
  check(/running/.test(await hmp(b, 'info status')), 'after: info status running');
  await shell(b, `cat /tmp/mark; kill -0 ${pid} && echo alive-${pid}; echo again-$((2+2))`, 'again-4');
  const tail = b.serial.text.slice(-200);
  check(tail.includes(MARK), 'after: the tmpfs file written before is intact');
  check(tail.includes(`alive-${pid}`), `after: process ${pid} started before the update still runs`);
  await end(b);
}

async function caseRefuse(): Promise<void> {
  const configs: Array<{ what: string; ram: string[]; reason: RegExp }> = [
    { what: 'RAM not shared', ram: ['-object', `memory-backend-ram,id=ram0,size=${RAM_MIB}M`, '-machine', 'memory-backend=ram0',
      '-machine', 'aux-ram-share=on'], reason: /Memory region ram0 is not compatible with CPR/ },
    { what: 'device with a migration blocker (virtio-crypto)', ram: [...MEMFD_RAM, '-object', 'cryptodev-backend-builtin,id=cr0',
      '-device', 'virtio-crypto-device,cryptodev=cr0'], reason: /virtio-crypto|not migratable|non-migratable/ },
  ];
  for (const c of configs) {
    console.log(`[host] --- ${c.what}`);
    const r = start('qemu-system-arm@v1', argsFor(c.ram));
    await boot(r);
    let execs = 0;
    void r.module.then((m) => { m.onExec = () => { execs++; return -ENOENT; }; });
    await hmp(r, 'migrate_set_parameter mode cpr-exec');
    await hmp(r, `migrate_set_parameter cpr-exec-command qemu-system-arm@v2 -incoming file:/vm.state`);
    const out = await hmp(r, 'migrate -d file:/vm.state');
    console.log(`[host] migrate said: ${out}`);
    check(c.reason.test(out), `${c.what}: migrate refused with QEMU's reason`);
    check(/running/.test(await hmp(r, 'info status')), `${c.what}: VM still running`);
    await shell(r, 'echo still-$((3*3))', 'still-9');
    check(execs === 0, `${c.what}: no exec`);
    await end(r);
  }
}

async function caseOnly(): Promise<void> {
  const cases: Array<{ what: string; argv: string[]; reason?: RegExp }> = [
    { what: 'RAM not shared', argv: argsFor(['-object', `memory-backend-ram,id=ram0,size=${RAM_MIB}M`, '-machine', 'memory-backend=ram0',
      '-machine', 'aux-ram-share=on'], ['-only-migratable-modes', 'cpr-exec']), reason: /-only-migratable-modes.*ram0 is not compatible with CPR/ },
    { what: 'auxiliary RAM not shared', argv: argsFor(['-object', `memory-backend-memfd,id=ram0,size=${RAM_MIB}M`,
      '-machine', 'memory-backend=ram0'], ['-only-migratable-modes', 'cpr-exec']), reason: /-only-migratable-modes.*not compatible with CPR/ },
    { what: 'unknown mode', argv: argsFor(MEMFD_RAM, ['-only-migratable-modes', 'cpr-exce']), reason: /unknown migration mode 'cpr-exce'/ },
    { what: 'a configuration that can live-update', argv: argsFor(MEMFD_RAM, ['-only-migratable-modes', 'cpr-exec', '-S']) },
  ];
  // One process per start: an instance that exited leaves its runtime
  // behind on this thread and the Memory uncleared.
  const only = process.argv[3];
  if (only === undefined) {
    for (let i = 0; i < cases.length; i++) {
      const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'only', String(i)],
        { stdio: 'inherit', env: process.env });
      if (child.status !== 0) failures.push(`only ${i}`);
    }
    return;
  }
  for (const c of cases.slice(Number(only), Number(only) + 1)) {
    console.log(`[host] --- ${c.what}`);
    const r = start('qemu-system-arm@v1', c.argv);
    if (c.reason) {
      const status = await Promise.race([r.exited, new Promise<string>((res) => setTimeout(() => res('no exit'), 60_000))]);
      check(status === 1, `${c.what}: exit status 1 at start (got ${status})`);
      check(r.log.some((l) => c.reason!.test(l)), `${c.what}: the reason is printed: ${r.log.slice(-2).join(' | ')}`);
    } else {
      await r.monitor.waitFor(/\(qemu\) $/, 60_000);
      check(/paused|prelaunch/.test(await hmp(r, 'info status')), `${c.what}: starts`);
      await end(r);
    }
  }
}

async function caseProposal(): Promise<void> {
  // As in the proposal, with the binary's name changed; /dev/shm is the
  // Emscripten FS's own (the worker backs it with memfd regions).
  const ram = ['-object', `memory-backend-file,id=ram0,size=${RAM_MIB}M,mem-path=/dev/shm/ram0,share=on`,
    '-machine', 'memory-backend=ram0', '-machine', 'memfd-alloc=on'];
  const r = start('qemu-system-arm@v1', argsFor(ram));
  await boot(r);
  const m = await r.module;
  check(m.FS.stat('/dev/shm/ram0').size === RAM_MIB * 2 ** 20, `memory-backend-file made /dev/shm/ram0 of ${RAM_MIB} MiB`);
  check(/running/.test(await hmp(r, 'info status')), 'info status: running');
  await hmp(r, 'migrate_set_parameter mode cpr-exec');
  await hmp(r, `migrate_set_parameter cpr-exec-args qemu-system-arm@v9 ${argsFor(ram, ['-incoming', 'file:/vm.state']).join(' ')}`);
  const params = await hmp(r, 'info migrate_parameters');
  check(/cpr-exec-command: qemu-system-arm@v9 /.test(params), 'cpr-exec-args sets cpr-exec-command');
  let argv0 = '';
  m.onExec = (argv) => { argv0 = argv[0] ?? ''; return -ENOENT; };
  const out = await hmp(r, 'migrate -d file:/vm.state');
  console.log(`[host] migrate said: ${out}`);
  const failedExec = /execvp qemu-system-arm@v9 failed: No such file or directory/;
  for (let i = 0; i < 600 && !r.log.concat(r.monitor.text).some((l) => failedExec.test(l)); i++) {
    await new Promise((res) => setTimeout(res, 100));
  }
  const status = await waitRunning(r);
  check(argv0 === 'qemu-system-arm@v9', `QEMU asked the host to exec ${argv0}`);
  check(r.log.concat(r.monitor.text).some((l) => failedExec.test(l)),
    'QEMU reports the failed exec');
  check(/running/.test(status), 'exec refused: the VM runs again on the old build');
  await shell(r, 'echo after-$((5+5))', 'after-10');
  check(true, 'the guest answers after the refused exec');
  await end(r);
}

const which = process.argv[2] ?? 'update';
const cases: Record<string, () => Promise<void>> = { update: caseUpdate, refuse: caseRefuse, only: caseOnly, proposal: caseProposal };
if (!cases[which]) {
  console.error(`unknown case ${which}; one of ${Object.keys(cases).join(', ')}`);
  process.exit(2);
}
try {
  await cases[which]();
} catch (e) {
  failures.push(String(e));
  console.error(e);
}
console.log(failures.length ? `[result] ${which}: ${failures.length} failed` : `[result] ${which}: all checks passed`);
process.exit(failures.length ? 1 : 0);
