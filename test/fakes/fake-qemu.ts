// Runs in Node (unit tests only): a fake QEMU for the host's protocol tests.
//
// It behaves like the real one at the byte level where the host cares: an
// HMP monitor with banner, echo and `(qemu) ` prompts; a QMP monitor with
// greeting, capabilities, ids, errors and STOP/RESUME/RESET/MIGRATION
// events; a serial console that prints the guest's ready line and answers
// `echo $((6*7))`; and cpr-exec's exec, reported as the real instance
// worker does (onExec with the argv of cpr-exec-command, or onCapture for
// a snapshot's CAPTURE_EXEC). On a shared Memory its guest RAM is one real
// memfd region with a mark in its first bytes.
import { CAPTURE_EXEC, type ConsoleName, type GuestPlan, type HandOver, type InstanceExit, type LaunchRequest, type OpenMemfd, type QemuBackend, type QemuInstanceLike } from '../../worker/backend';
import { createSharedMemory, RegionTable } from '../../worker/qemu/memory';
import { captureRam } from '../../worker/qemu/ram-image';

/** The first bytes of a fake guest's RAM. */
export const FAKE_RAM_MARK = [0x52, 0x41, 0x4d, 0x21];
const QEVM = new Uint8Array([0x51, 0x45, 0x56, 0x4d]);

/** What `migrate` does in this fake (cpr-exec mode). */
export type FakeMigrate =
  | 'exec' // the VM stops, QEMU exec's cpr-exec-command (the normal case)
  | 'blocked' // refused at once with a blocker's error (RAM not shared)
  | 'hang' // accepted, then nothing: no exec, no event
  | 'fail' // accepted, then MIGRATION failed; QEMU runs the VM again
  | 'die'; // accepted, then QEMU exits (status 1) before exec

export interface FakeOptions {
  /** Never print the ready line (a guest that does not boot). */
  silent?: boolean;
  /** Exit with this status right after start. */
  exitStatus?: number;
  /** launch() rejects with this message (a wasm that fails to instantiate). */
  launchError?: string;
  /** Exit at once with this abort message, as Emscripten does on a CompileError. */
  abortMessage?: string;
  /** Log this line and hang, as the glue does when a pthread traps. */
  crashLine?: string;
  /** launch() never settles (QEMU's main thread died while starting); logs crashLine if set. */
  hangLaunch?: boolean;
  readyDelayMs?: number;
  /** `migrate` in cpr-exec mode. ['exec'] */
  migrate?: FakeMigrate;
  /** A snapshot's capture exec finds no device state (the worker says why). */
  captureFails?: boolean;
  /** An instance started with -incoming never answers QMP (a new QEMU that hangs). */
  incomingHangs?: boolean;
  /** An instance started with -incoming exits with status 1 (state does not load). */
  incomingFails?: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** QEMU 10.2's QMP greeting, as it is written to the chardev. */
export const GREETING = '{"QMP": {"version": {"qemu": {"micro": 2, "minor": 2, "major": 10}, "package": ""}, "capabilities": ["oob"]}}\r\n';

type Json = Record<string, unknown>;

export class FakeQemu implements QemuInstanceLike {
  readonly exited: Promise<InstanceExit>;
  running = true;
  vmState: 'running' | 'paused' | 'inmigrate' = 'running';
  killed = false;
  readonly qmpLog: string[] = [];
  private settle!: (exit: InstanceExit) => void;
  private monitorLine = '';
  private serialLine = '';
  private qmpBuffer = '';
  private negotiated = false;
  /** Migration parameters as QEMU holds them. */
  params: Json = { mode: 'normal' };
  private migration: { status: string; error?: string } = { status: 'none' };
  private readonly incoming: boolean;
  /** The memfds of its guest RAM: its own, or those it took over. */
  readonly ram: OpenMemfd[];

  constructor(readonly req: LaunchRequest, readonly opts: FakeOptions) {
    this.exited = new Promise((r) => (this.settle = r));
    this.incoming = req.argv.includes('-incoming');
    this.ram = req.adopt ?? (req.memory ? [fakeRam(req.memory)] : []);
    if (this.incoming) this.vmState = 'inmigrate';
    setTimeout(() => {
      req.onConsole('monitor', enc.encode("QEMU 10.2.2 monitor - type 'help' for more information\r\n(qemu) "));
      if (opts.crashLine !== undefined) {
        req.onLog(opts.crashLine);
        return;
      }
      if (opts.abortMessage !== undefined) {
        this.settle({ status: 134, message: opts.abortMessage });
        this.running = false;
        return;
      }
      if (opts.exitStatus !== undefined) {
        req.onLog('qemu-system-arm: fake failure');
        this.exit(opts.exitStatus);
        return;
      }
      // Started early: QEMU waits at its CPR state for the exec.
      if (req.early) {
        req.onAwaitingExec?.(performance.timeOrigin + performance.now());
        return;
      }
      this.start();
    }, 1);
  }

  /** The rest of the start: from the CPR state on. */
  private start(): void {
    const { req, opts } = this;
    if (this.incoming && opts.incomingFails) {
      req.onLog('qemu-system-arm: load of migration failed: Invalid argument');
      this.exit(1);
      return;
    }
    if (!(this.incoming && opts.incomingHangs)) req.onConsole('qmp', enc.encode(GREETING));
    if (this.incoming) {
      // The state loads; the VM runs on (autostart).
      setTimeout(() => {
        if (!this.running) return;
        this.vmState = 'running';
        this.event('RESUME');
      }, 3);
    } else if (!opts.silent) {
      setTimeout(() => this.bootLog(), opts.readyDelayMs ?? 5);
    }
  }

  /** The exec handed over, if this instance was started early. */
  handedOver: HandOver | null = null;

  handOver(exec: HandOver): void {
    if (!this.req.early || this.handedOver) throw new Error('not an instance started early, or handed over twice');
    this.handedOver = exec;
    if (this.running) setTimeout(() => this.start(), 1);
  }

  async openMemfds(): Promise<OpenMemfd[]> {
    return this.ram;
  }

  bootLog(): void {
    if (!this.running) return;
    // A byte at a time, as a UART does, with the ready line split.
    for (const ch of 'Booting Linux...\r\ncpr-playground guest ready\r\n/ # ') this.req.onConsole('serial', enc.encode(ch));
  }

  /** Every byte the file channel got, in order (the fake has no agent). */
  readonly filesIn: number[] = [];

  write(console: ConsoleName, bytes: Uint8Array): void {
    if (!this.running) return;
    switch (console) {
      case 'serial':
        this.writeSerial(bytes);
        return;
      case 'monitor':
        this.writeMonitor(bytes);
        return;
      case 'qmp':
        this.writeQmp(bytes);
        return;
      case 'files':
        this.filesIn.push(...bytes);
        return;
    }
  }

  private writeSerial(bytes: Uint8Array): void {
    for (const ch of dec.decode(bytes)) {
      if (ch === '\r' || ch === '\n') {
        const line = this.serialLine;
        this.serialLine = '';
        const m = /^echo \$\(\((\d+)\*(\d+)\)\)$/.exec(line);
        const out = m ? `${Number(m[1]) * Number(m[2])}\r\n` : '';
        this.req.onConsole('serial', enc.encode(`\r\n${out}/ # `));
      } else {
        this.serialLine += ch;
        this.req.onConsole('serial', enc.encode(ch));
      }
    }
  }

  private writeMonitor(bytes: Uint8Array): void {
    for (const ch of dec.decode(bytes)) {
      if (ch === '\r') {
        const cmd = this.monitorLine.trim();
        this.monitorLine = '';
        this.req.onConsole('monitor', enc.encode('\r\n'));
        setTimeout(() => this.req.onConsole('monitor', enc.encode(`${this.hmp(cmd)}(qemu) `)), 1);
      } else {
        this.monitorLine += ch;
        this.req.onConsole('monitor', enc.encode(ch));
      }
    }
  }

  /** One HMP command; its output with '\r\n' line ends. */
  private hmp(cmd: string): string {
    if (cmd === 'info status') return `VM status: ${this.vmState}\r\n`;
    if (cmd === 'info version') return '10.2.2\r\n';
    if (cmd === 'stop') this.setVm('paused');
    else if (cmd === 'cont') this.setVm('running');
    else if (cmd === 'system_reset') this.reset();
    else if (cmd === 'quit') setTimeout(() => this.exit(0), 1);
    else if (cmd.startsWith('migrate_set_parameter ')) {
      const [, name = '', ...value] = cmd.split(/\s+/);
      this.params[name === 'cpr-exec-args' ? 'cpr-exec-command' : name] = name === 'mode' ? value[0] : value;
    } else if (cmd.startsWith('migrate ')) this.migrate(undefined);
    else if (cmd !== '') return `unknown command: '${cmd}'\r\n`;
    return '';
  }

  private writeQmp(bytes: Uint8Array): void {
    this.qmpBuffer += dec.decode(bytes);
    let nl: number;
    while ((nl = this.qmpBuffer.indexOf('\n')) >= 0) {
      const line = this.qmpBuffer.slice(0, nl);
      this.qmpBuffer = this.qmpBuffer.slice(nl + 1);
      const msg = JSON.parse(line) as { execute: string; arguments?: Json; id?: number };
      this.qmpLog.push(msg.execute);
      setTimeout(() => this.qmp(msg.execute, msg.arguments ?? {}, msg.id), 1);
    }
  }

  private reply(id: number | undefined, ret: unknown): void {
    if (id === undefined) return; // typed into HMP: no QMP reply
    this.req.onConsole('qmp', enc.encode(`${JSON.stringify({ return: ret, id })}\r\n`));
  }

  private error(id: number | undefined, desc: string): void {
    if (id === undefined) return;
    this.req.onConsole('qmp', enc.encode(`${JSON.stringify({ error: { class: 'GenericError', desc }, id })}\r\n`));
  }

  private event(name: string, data?: Json): void {
    // As QEMU's: no events for a client still negotiating.
    if (!this.negotiated) return;
    const now = Date.now();
    const msg = { event: name, data, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } };
    this.req.onConsole('qmp', enc.encode(`${JSON.stringify(msg)}\r\n`));
  }

  private setVm(state: 'running' | 'paused'): void {
    if (this.vmState === state) return;
    this.vmState = state;
    this.event(state === 'running' ? 'RESUME' : 'STOP');
  }

  private reset(): void {
    this.event('RESET', { guest: false, reason: 'host-qmp-system-reset' });
    setTimeout(() => this.bootLog(), 5);
  }

  private qmp(cmd: string, args: Json, id: number | undefined): void {
    if (!this.running) return;
    if (this.incoming && this.opts.incomingHangs) return;
    if (cmd === 'qmp_capabilities') {
      this.negotiated = true;
      return this.reply(id, {});
    }
    if (!this.negotiated) return this.error(id, 'Expecting capabilities negotiation with \'qmp_capabilities\'');
    switch (cmd) {
      case 'query-status':
        return this.reply(id, { status: this.vmState, running: this.vmState === 'running' });
      case 'human-monitor-command':
        return this.reply(id, this.hmp(String(args['command-line'])));
      case 'stop':
        this.setVm('paused');
        return this.reply(id, {});
      case 'cont':
        this.setVm('running');
        return this.reply(id, {});
      case 'system_reset':
        this.reply(id, {});
        return this.reset();
      case 'quit':
        this.reply(id, {});
        return void setTimeout(() => this.exit(0), 1);
      case 'migrate-set-capabilities':
        return this.reply(id, {});
      case 'migrate-set-parameters':
        this.params = { ...this.params, ...args };
        return this.reply(id, {});
      case 'query-migrate-parameters':
        return this.reply(id, this.params);
      case 'query-migrate':
        return this.reply(id, { status: this.migration.status, 'error-desc': this.migration.error });
      case 'migrate_cancel':
        this.migration = { status: 'cancelled' };
        this.setVm('running');
        return this.reply(id, {});
      case 'migrate':
        return this.migrate(id);
      default:
        return this.error(id, `The command ${cmd} has not been found`);
    }
  }

  private migrate(id: number | undefined): void {
    if (this.params.mode !== 'cpr-exec') {
      // A normal migration to a file (the copy route): done at once.
      this.reply(id, {});
      this.migration = { status: 'completed' };
      return this.event('MIGRATION', { status: 'completed' });
    }
    const how = this.opts.migrate ?? 'exec';
    if (how === 'blocked') return this.error(id, 'Memory region pc.ram is not compatible with CPR. share=on is required for memory-backend objects, and aux-ram-share=on is required.');
    this.reply(id, {});
    this.migration = { status: 'active' };
    this.event('MIGRATION', { status: 'setup' });
    if (how === 'hang') return;
    if (how === 'die') return void setTimeout(() => this.exit(1), 2);
    this.setVm('paused');
    if (how === 'fail') {
      setTimeout(() => {
        this.migration = { status: 'failed', error: 'fake: could not write the state' };
        this.event('MIGRATION', { status: 'failed' });
        this.setVm('running');
      }, 2);
      return;
    }
    const argv = (this.params['cpr-exec-command'] as string[] | undefined) ?? [];
    if (argv[0] === CAPTURE_EXEC) {
      // The instance worker takes RAM out and refuses the exec; QEMU fails
      // the migration and runs the VM again.
      this.migration = { status: 'completed' };
      this.event('MIGRATION', { status: 'completed' });
      setTimeout(() => {
        const memory = this.req.memory;
        this.req.onCapture?.(
          memory && !this.opts.captureFails
            ? { image: captureRam(memory, this.ram, ['QEMU_CPR_EXEC_STATE=9']), state: QEVM.slice() }
            : { error: 'the device state /snapshot.state is missing or not a QEMU migration stream' },
        );
        this.req.onLog(`qemu-system-arm: execvp ${CAPTURE_EXEC} failed: Operation canceled`);
        this.migration = { status: 'failed', error: `execvp ${CAPTURE_EXEC} failed: Operation canceled` };
        this.event('MIGRATION', { status: 'failed' });
        this.setVm('running');
      }, 2);
      return;
    }
    setTimeout(() => {
      this.req.onExec?.({
        argv,
        env: ['QEMU_CPR_EXEC_STATE=9'],
        open: [],
        heapTop: 1 << 20,
        unread: {},
        files: { [argv[argv.indexOf('-incoming') + 1]?.replace(/^file:/, '') ?? '/vm.state']: new Uint8Array([0x51, 0x45, 0x56, 0x4d]) },
        at: performance.timeOrigin + performance.now(),
      });
    }, 2);
  }

  exit(status: number): void {
    if (!this.running) return;
    this.running = false;
    // A small heap: the exec path clears only that much of the Memory.
    this.settle({ status, heapTop: 1 << 20 });
  }

  async kill(): Promise<void> {
    this.killed = true;
    this.exit(137);
    await this.exited;
  }

  async readFile(): Promise<Uint8Array | null> {
    return new Uint8Array([0x51, 0x45, 0x56, 0x4d]);
  }
}

/** A fresh instance's guest RAM: a 1 MiB memfd region, marked. */
function fakeRam(memory: WebAssembly.Memory): OpenMemfd {
  const table = new RegionTable(memory);
  const file = table.add('ram0');
  table.reserve(file, 2 ** 20);
  table.setSize(file, 2 ** 20);
  new Uint8Array(memory.buffer).set(FAKE_RAM_MARK, table.entry(file).base);
  return { fd: 15, file, path: '/dev/memfd/0-ram0' };
}

export class FakeBackend implements QemuBackend {
  instances: FakeQemu[] = [];
  /** Options per launch (index 0: the boot), falling back to `opts`. */
  perLaunch: FakeOptions[] = [];
  constructor(public opts: FakeOptions = {}) {}

  async launch(req: LaunchRequest): Promise<QemuInstanceLike> {
    const opts = this.perLaunch[this.instances.length] ?? this.opts;
    if (opts.launchError) throw new Error(opts.launchError);
    if (opts.hangLaunch) {
      const line = opts.crashLine;
      if (line) setTimeout(() => req.onLog(line), 5);
      return new Promise<never>(() => undefined);
    }
    const q = new FakeQemu(req, opts);
    this.instances.push(q);
    return q;
  }

  plan(guest: 'arm' | 'i386', ramMiB: number): GuestPlan {
    return {
      argv: ['-M', guest === 'arm' ? 'virt' : 'pc', '-m', String(ramMiB), '-kernel', '/guest/kernel'],
      files: { [`guest/${guest}/kernel`]: '/guest/kernel' },
      bootedSnapshot: `snapshots/${guest}.cprsnap`,
    };
  }

  /** Live updates need the real layout (the exec path keeps its region table). */
  createMemory(): WebAssembly.Memory {
    return createSharedMemory();
  }
}

export const WASM_BYTES = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

export const MANIFEST = {
  format: 1,
  qemu: { version: '10.2.2', builds: ['v1', 'v2'] },
  artifacts: [
    { path: 'qemu/v1/qemu-system-arm.js.gz', rawSize: 10 },
    { path: 'qemu/v1/qemu-system-arm.wasm.gz', rawSize: 8 },
    { path: 'qemu/v1/qemu-system-i386.js.gz', rawSize: 10 },
    { path: 'qemu/v1/qemu-system-i386.wasm.gz', rawSize: 8 },
    { path: 'qemu/v2/qemu-system-arm.js.gz', rawSize: 10 },
    { path: 'qemu/v2/qemu-system-arm.wasm.gz', rawSize: 8 },
    { path: 'guest/arm/kernel.gz', rawSize: 4 },
    { path: 'guest/i386/kernel.gz', rawSize: 4 },
  ],
};

/** The glue of a live-update build carries its memory layout's tag. */
const GLUE = enc.encode('var CPR_LAYOUT_TAG="cpr-memory-layout/2";');

/** Glues that say where their build's static data starts: v1 in the
 * lower slot, v2 in the upper (a live update between them starts the
 * next QEMU early). */
export const SLOTTED_GLUES: Record<string, Uint8Array> = {
  'qemu/v1/qemu-system-arm.js': enc.encode('var CPR_LAYOUT_TAG="cpr-memory-layout/2";\nvar CPR_STATIC_BASE = 1024;'),
  'qemu/v2/qemu-system-arm.js': enc.encode('var CPR_LAYOUT_TAG="cpr-memory-layout/2";\nvar CPR_STATIC_BASE = 268435456;'),
};

/** A fetch over an in-memory artifacts tree; `overrides` replace or remove files. */
export function fakeFetch(overrides: Record<string, Uint8Array | null> = {}) {
  const files: Record<string, Uint8Array | null> = {
    'manifest.json': enc.encode(JSON.stringify(MANIFEST)),
    'qemu/v1/qemu-system-arm.wasm': WASM_BYTES,
    'qemu/v1/qemu-system-arm.js': GLUE,
    'qemu/v1/qemu-system-i386.wasm': WASM_BYTES,
    'qemu/v1/qemu-system-i386.js': GLUE,
    'qemu/v2/qemu-system-arm.wasm': WASM_BYTES,
    'qemu/v2/qemu-system-arm.js': GLUE,
    'guest/arm/kernel': new Uint8Array(4),
    'guest/i386/kernel': new Uint8Array(4),
    ...overrides,
  };
  return async (url: string): Promise<Response> => {
    const path = url.replace(/^.*?\/artifacts\//, '');
    const body = files[path];
    if (!body) return new Response('not found', { status: 404, statusText: 'Not Found' });
    return new Response(body.slice(), { headers: { 'content-length': String(body.length) } });
  };
}
