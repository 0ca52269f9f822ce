// Profiles our wasm QEMU on the CPU workload, in Node (docs/performance.md):
//   node --import tsx bench/profile.ts [options]
// Boots a guest from scratch with a build's qemu-system-<arch>.js/.wasm,
// waits for its shell, then runs `time sh -c "head -c N /dev/zero |
// sha256sum"` (the bench's workload, N = --mib MiB) --runs times and prints
// the host wall time of each. With --profile DIR it records a V8 CPU
// profile of every thread (Node's main thread and each worker_thread, which
// are QEMU's pthreads: the main loop under PROXY_TO_PTHREAD and the vCPU
// thread) over the workload runs only, not the boot, one .cpuprofile per
// thread; bench/profile-report.ts turns them into a table.
//
// Options:
//   --js PATH       the build's .js (default: the unpacked v1 artifact)
//   --guest NAME    arm | i386 (default i386)
//   --mib N         MiB hashed per run (default 2)
//   --runs N        workload runs (default 1)
//   --profile DIR   write CPU profiles to DIR
//   --interval US   sampling interval in microseconds (default 1000)
//   --layout        run as the page does when it can live-update: on a
//                   shared Memory with the cpr layout, guest RAM in memfds
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import { GUESTS, READY_LINE, guestArgv, type GuestName } from '../worker/qemu/guests';
import { launchQemu, type QemuInstance } from '../worker/qemu/instance';
import { createSharedMemory } from '../worker/qemu/memory';
import { ARTIFACTS } from '../test/artifacts';
import { SHELL_PROMPT_LINE } from '../test/shell-prompt';
import { Transcript } from '../test/smoke/transcript';
import { cpuSpent, describeCpu, threadCpu } from './cpu-threads';
import { guestRealSeconds } from './page-shell';

interface Options {
  js: string | undefined;
  guest: GuestName;
  mib: number;
  runs: number;
  profile: string | undefined;
  intervalUs: number;
  layout: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { js: undefined, guest: 'i386', mib: 2, runs: 1, profile: undefined, intervalUs: 1000, layout: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const need = (): string => {
      if (v === undefined) throw new Error(`${a} needs a value`);
      i++;
      return v;
    };
    switch (a) {
      case '--js': opts.js = need(); break;
      case '--guest': {
        const g = need();
        if (g !== 'arm' && g !== 'i386') throw new Error(`unknown guest ${g}`);
        opts.guest = g;
        break;
      }
      case '--mib': opts.mib = Number(need()); break;
      case '--runs': opts.runs = Number(need()); break;
      case '--profile': opts.profile = need(); break;
      case '--interval': opts.intervalUs = Number(need()); break;
      case '--layout': opts.layout = true; break;
      default: throw new Error(`unknown option ${String(a)}`);
    }
  }
  return opts;
}

/** One thread's profiler, reached through the main thread's inspector
 * session (NodeWorker domain) or, for the main thread, that session itself. */
interface ThreadProfiler {
  label: string;
  call(method: string, params?: object): Promise<unknown>;
}

interface CdpReply {
  id?: number;
  result?: unknown;
  error?: { message: string };
}

function isCdpReply(value: unknown): value is CdpReply {
  return typeof value === 'object' && value !== null;
}

/** Profilers for the main thread and every worker thread there is now. */
async function threadProfilers(session: Session): Promise<ThreadProfiler[]> {
  const workers: Array<{ sessionId: string; title: string }> = [];
  session.on('NodeWorker.attachedToWorker', (m) => {
    workers.push({ sessionId: m.params.sessionId, title: `${m.params.workerInfo.title} (${m.params.workerInfo.workerId})` });
  });
  const pending = new Map<string, Map<number, { resolve(v: unknown): void; reject(e: Error): void }>>();
  session.on('NodeWorker.receivedMessageFromWorker', (m) => {
    const reply: unknown = JSON.parse(m.params.message);
    if (!isCdpReply(reply) || reply.id === undefined) return;
    const waiter = pending.get(m.params.sessionId)?.get(reply.id);
    if (!waiter) return;
    pending.get(m.params.sessionId)?.delete(reply.id);
    if (reply.error) waiter.reject(new Error(reply.error.message));
    else waiter.resolve(reply.result);
  });
  await session.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
  // The attach notifications for existing workers arrive right after.
  await new Promise((r) => setTimeout(r, 500));
  let nextId = 1;
  const out: ThreadProfiler[] = [{
    label: 'main',
    call: (method, params) => session.post(method, params),
  }];
  for (const w of workers) {
    const waiters = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
    pending.set(w.sessionId, waiters);
    out.push({
      label: w.title,
      call: (method, params) => {
        const id = nextId++;
        const done = new Promise<unknown>((resolve, reject) => waiters.set(id, { resolve, reject }));
        void session.post('NodeWorker.sendMessageToWorker', { sessionId: w.sessionId, message: JSON.stringify({ id, method, params }) });
        return done;
      },
    });
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms))]);
}

const encoder = new TextEncoder();

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const spec = GUESTS[opts.guest];
  const js = opts.js ?? `${ARTIFACTS}/qemu/v1/${spec.binary}.js`;
  const wasm = js.replace(/\.js$/, '.wasm');
  const launch = guestArgv(opts.guest, 128, { liveUpdate: opts.layout });
  const files = Object.fromEntries(Object.entries(launch.files).map(([artifact, p]) => [p, readFileSync(`${ARTIFACTS}/${artifact}`)]));
  const serial = new Transcript();
  const log: string[] = [];
  const t0 = Date.now();
  let qemu: QemuInstance | undefined;
  try {
    qemu = await launchQemu({
      jsUrl: pathToFileURL(js).href,
      wasmUrl: pathToFileURL(wasm).href,
      argv: launch.argv,
      files,
      onConsole: (c, b) => { if (c === 'serial') serial.pushBytes(b); },
      onLog: (line) => log.push(line),
      ...(opts.layout ? { memory: createSharedMemory() } : {}),
    });
    await serial.waitFor(READY_LINE, 600_000);
    await serial.waitFor(SHELL_PROMPT_LINE, 120_000);
    console.log(`booted ${opts.guest}${opts.layout ? ' (live-update layout)' : ''} with ${js} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Let the shell settle (its cursor query after the prompt).
    await new Promise((r) => setTimeout(r, 2000));

    let profilers: ThreadProfiler[] = [];
    const session = new Session();
    if (opts.profile) {
      session.connect();
      profilers = await threadProfilers(session);
      for (const p of profilers) {
        await withTimeout(p.call('Profiler.enable'), 30_000, `${p.label} Profiler.enable`);
        await withTimeout(p.call('Profiler.setSamplingInterval', { interval: opts.intervalUs }), 30_000, p.label);
        await withTimeout(p.call('Profiler.start'), 30_000, `${p.label} Profiler.start`);
      }
      console.log(`profiling ${profilers.length} threads: ${profilers.map((p) => p.label).join(', ')}`);
    }

    const bytes = opts.mib * 1024 * 1024;
    const zeroHash = createHash('sha256').update(Buffer.alloc(bytes)).digest('hex');
    for (let run = 1; run <= opts.runs; run++) {
      const marker = `__PROF_${run}_`;
      const from = serial.text.length;
      const cpu0 = threadCpu();
      const start = performance.now();
      qemu.write('serial', encoder.encode(`time sh -c "head -c ${bytes} /dev/zero | sha256sum"; echo ${marker}$?\n`));
      await serial.waitFor(new RegExp(`${marker}\\d+\\r?\\n`), 1_800_000, from);
      const ms = performance.now() - start;
      const spent = cpuSpent(cpu0, threadCpu());
      const text = serial.text.slice(from);
      const guest = guestRealSeconds(text);
      // A faster build that computes the wrong hash is not faster.
      const hashOk = text.includes(zeroHash);
      console.log(`run ${run}: ${opts.mib} MiB in ${(ms / 1000).toFixed(2)} s host wall, guest real ${guest ?? '?'} s; ${describeCpu(spent)}; sha256 ${hashOk ? 'ok' : 'WRONG'}`);
      if (!hashOk) throw new Error(`the guest's sha256 of ${bytes} zero bytes is not ${zeroHash}`);
    }

    if (opts.profile) {
      mkdirSync(opts.profile, { recursive: true });
      let n = 0;
      for (const p of profilers) {
        const result = await withTimeout(p.call('Profiler.stop'), 60_000, `${p.label} Profiler.stop`);
        const profile = (result as { profile: unknown }).profile;
        const file = `${opts.profile}/thread-${n++}.cpuprofile`;
        writeFileSync(file, JSON.stringify(profile));
        console.log(`wrote ${file} (${p.label})`);
      }
      session.disconnect();
    }
    qemu.write('monitor', encoder.encode('quit\n'));
    await Promise.race([qemu.exited, new Promise((r) => setTimeout(r, 10_000))]);
  } catch (err) {
    console.error(`failed: ${err instanceof Error ? err.message : String(err)}\n--- serial tail ---\n${serial.text.slice(-600)}\n--- log ---\n${log.slice(-5).join('\n')}`);
    await qemu?.kill();
    process.exit(1);
  }
  process.exit(0);
}

await main();
