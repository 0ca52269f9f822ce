// Runs in Node (unit tests only): a fake QEMU for the host's protocol tests.
//
// It behaves like the real one at the byte level where the host cares:
// an HMP monitor with banner, echo and `(qemu) ` prompts, and a serial
// console that prints the guest's ready line and answers `echo $((6*7))`.
import type { GuestPlan, LaunchRequest, QemuBackend, QemuInstanceLike } from '../../worker/host';

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
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class FakeQemu implements QemuInstanceLike {
  readonly exited: Promise<{ status: number; message?: string }>;
  running = true;
  vmState: 'running' | 'paused' = 'running';
  killed = false;
  private settle!: (exit: { status: number; message?: string }) => void;
  private monitorLine = '';
  private serialLine = '';

  constructor(readonly req: LaunchRequest, private readonly opts: FakeOptions) {
    this.exited = new Promise((r) => (this.settle = r));
    setTimeout(() => {
      req.onMonitor(enc.encode("QEMU 10.2.2 monitor - type 'help' for more information\r\n(qemu) "));
      if (opts.crashLine !== undefined) {
        req.onLog(opts.crashLine);
      } else if (opts.abortMessage !== undefined) {
        this.settle({ status: 134, message: opts.abortMessage });
        this.running = false;
      } else if (opts.exitStatus !== undefined) {
        req.onLog('qemu-system-arm: fake failure');
        this.exit(opts.exitStatus);
      } else if (!opts.silent) {
        setTimeout(() => this.bootLog(), opts.readyDelayMs ?? 5);
      }
    }, 1);
  }

  bootLog(): void {
    if (!this.running) return;
    // A byte at a time, as a UART does, with the ready line split.
    for (const ch of 'Booting Linux...\r\ncpr-playground guest ready\r\n/ # ') this.req.onSerial(enc.encode(ch));
  }

  writeSerial(bytes: Uint8Array): void {
    for (const ch of dec.decode(bytes)) {
      if (ch === '\r') {
        const line = this.serialLine;
        this.serialLine = '';
        const m = /^echo \$\(\((\d+)\*(\d+)\)\)$/.exec(line);
        const out = m ? `${Number(m[1]) * Number(m[2])}\r\n` : '';
        this.req.onSerial(enc.encode(`\r\n${out}/ # `));
      } else {
        this.serialLine += ch;
        this.req.onSerial(enc.encode(ch));
      }
    }
  }

  writeMonitor(bytes: Uint8Array): void {
    for (const ch of dec.decode(bytes)) {
      if (ch === '\r') {
        const cmd = this.monitorLine.trim();
        this.monitorLine = '';
        this.req.onMonitor(enc.encode('\r\n'));
        setTimeout(() => this.runMonitor(cmd), 1);
      } else {
        this.monitorLine += ch;
        this.req.onMonitor(enc.encode(ch));
      }
    }
  }

  private runMonitor(cmd: string): void {
    let out = '';
    if (cmd === 'info status') out = `VM status: ${this.vmState}\r\n`;
    else if (cmd === 'info version') out = '10.2.2\r\n';
    else if (cmd === 'stop') this.vmState = 'paused';
    else if (cmd === 'cont') this.vmState = 'running';
    else if (cmd === 'system_reset') setTimeout(() => this.bootLog(), 5);
    else if (cmd === 'quit') return this.exit(0);
    else if (cmd !== '') out = `unknown command: '${cmd}'\r\n`;
    this.req.onMonitor(enc.encode(`${out}(qemu) `));
  }

  exit(status: number): void {
    if (!this.running) return;
    this.running = false;
    this.settle({ status });
  }

  async kill(): Promise<void> {
    this.killed = true;
    this.exit(137);
    await this.exited;
  }
}

export class FakeBackend implements QemuBackend {
  instances: FakeQemu[] = [];
  constructor(public opts: FakeOptions = {}) {}

  async launch(req: LaunchRequest): Promise<QemuInstanceLike> {
    if (this.opts.launchError) throw new Error(this.opts.launchError);
    if (this.opts.hangLaunch) {
      const line = this.opts.crashLine;
      if (line) setTimeout(() => req.onLog(line), 5);
      return new Promise<never>(() => undefined);
    }
    const q = new FakeQemu(req, this.opts);
    this.instances.push(q);
    return q;
  }

  plan(guest: 'arm' | 'i386', ramMiB: number): GuestPlan {
    return {
      argv: ['-M', guest === 'arm' ? 'virt' : 'pc', '-m', String(ramMiB), '-kernel', '/guest/kernel'],
      files: { [`guest/${guest}/kernel`]: '/guest/kernel' },
    };
  }
}

export const WASM_BYTES = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

export const MANIFEST = {
  format: 1,
  qemu: { version: '10.2.2', builds: ['v1'] },
  artifacts: [
    { path: 'qemu/v1/qemu-system-arm.js.gz', rawSize: 10 },
    { path: 'qemu/v1/qemu-system-arm.wasm.gz', rawSize: 8 },
    { path: 'qemu/v1/qemu-system-i386.js.gz', rawSize: 10 },
    { path: 'qemu/v1/qemu-system-i386.wasm.gz', rawSize: 8 },
    { path: 'guest/arm/kernel.gz', rawSize: 4 },
    { path: 'guest/i386/kernel.gz', rawSize: 4 },
  ],
};

/** A fetch over an in-memory artifacts tree; `overrides` replace or remove files. */
export function fakeFetch(overrides: Record<string, Uint8Array | null> = {}) {
  const files: Record<string, Uint8Array | null> = {
    'manifest.json': enc.encode(JSON.stringify(MANIFEST)),
    'qemu/v1/qemu-system-arm.wasm': WASM_BYTES,
    'qemu/v1/qemu-system-i386.wasm': WASM_BYTES,
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
