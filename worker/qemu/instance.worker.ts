// Runs in an instance worker: a dedicated Worker that the QEMU host
// worker creates for one QEMU instance and terminates when it ends, on a
// stop or on cpr-exec. Terminating it ends the module's runtime and all
// QEMU's pthread workers (nested in this one) at once, so no old runtime
// stays behind to serve the next instance's proxied calls.
import { concatBytes } from './bytes';
import { CONSOLES, type ConsoleName } from './consoles';
import { CAPTURE_EXEC, captureExec, ECANCELED, isMigrationStream } from './capture';
import { incomingFiles, stageQemu, type ExecRequest, type QemuInstance, type StagedQemu } from './instance';
import type { StoppedThreads } from './parked';
import { trackAsyncWork } from './quiesce';
import { parsePrewarmName, wallClock, type FromInstance, type InstanceRun, type InstanceStage, type ToInstance } from './instance-protocol';

// Emscripten's errno values (not Linux's).
const ENOENT = 44;
const EIO = 29;
const scope = self as unknown as DedicatedWorkerGlobalScope;
// Before the glue loads: its mailbox waits and timers are then known.
const asyncWork = trackAsyncWork();
const post = (m: FromInstance, transfer: Transferable[] = []): void => scope.postMessage(m, transfer);

/** Batches a console's byte stream: QEMU's UART writes a byte at a time. */
class Batcher {
  private chunks: Uint8Array[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  constructor(private readonly console: ConsoleName) {}
  add(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
    this.timer ??= setTimeout(() => this.flush(), 4);
  }
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.chunks.length === 0) return;
    const out = concatBytes(this.chunks);
    this.chunks = [];
    post({ type: 'console', console: this.console, bytes: out }, [out.buffer]);
  }
}
const batchers = new Map(CONSOLES.map((c) => [c, new Batcher(c)] as const));

let instance: QemuInstance | null = null;
const early: ToInstance[] = [];

// Pthread workers started ahead (prewarm): the glue's `new Worker(...)`
// for a pthread gets one of these, already past loading the glue script.
const spare: { url: string; worker: Worker }[] = [];
const NativeWorker = globalThis.Worker;
function PooledWorker(url: string | URL, options?: WorkerOptions): Worker {
  const href = String(url);
  const i = options?.name === 'em-pthread' ? spare.findIndex((s) => s.url === href) : -1;
  return reportingThreads(i >= 0 ? spare.splice(i, 1)[0]!.worker : new NativeWorker(url, options));
}

/**
 * Tells the host each QEMU thread as the glue starts it (its message to a
 * pthread worker to run a thread names the thread). A 'kill' can find this
 * worker busy in wasm, unable to answer with where its threads wait; the
 * host then walks the threads it was told of itself (parked.ts). Posting
 * needs no event loop, so this reaches the host even from a busy QEMU.
 */
function reportingThreads(worker: Worker): Worker {
  const send = worker.postMessage.bind(worker) as (message: unknown, transfer?: Transferable[]) => void;
  worker.postMessage = ((message: unknown, transfer?: Transferable[]) => {
    const m = message as { pthread_ptr?: unknown; start_routine?: unknown } | null;
    if (m && typeof m.pthread_ptr === 'number' && m.start_routine !== undefined) post({ type: 'thread', thread: m.pthread_ptr });
    send(message, transfer);
  }) as Worker['postMessage'];
  return worker;
}
PooledWorker.prototype = NativeWorker.prototype;
(globalThis as { Worker: unknown }).Worker = PooledWorker;

function prewarm(jsUrl: string, threads: number): void {
  // Found by the URL the glue computes for its pthreads: its own file
  // name next to it, without the query it was loaded with (the artifact's
  // version, BuildRegistry.versioned()); loaded with that query, from the
  // browser's cache without asking the server.
  const url = new URL(new URL(jsUrl).pathname.split('/').pop()!, jsUrl).href;
  for (let i = 0; i < threads; i++) spare.push({ url, worker: new NativeWorker(jsUrl, { type: 'module', name: 'em-pthread' }) });
  void import(/* @vite-ignore */ jsUrl).catch(() => undefined);
}

const ahead = parsePrewarmName(scope.name);
if (ahead) prewarm(ahead.jsUrl, ahead.threads);

/** The host is ending this instance ('kill', or an accepted exec). */
let killing = false;
/** End QEMU's threads right after an accepted exec (not when a QEMU
 * started early takes the exec: 'successor-started'). */
let stopAtExec = true;
/** QEMU's threads being ended, once asked for. */
let stopping: Promise<StoppedThreads> | null = null;

/**
 * Ends QEMU's threads (once). Asked for by the host's 'kill', and at once
 * after an accepted exec: the host ends this instance after every one
 * (to start the next build, or the old one again from the same state),
 * and its 'kill' would come a message round trip later.
 */
function stopThreads(inst: QemuInstance): Promise<StoppedThreads> {
  killing = true;
  return (stopping ??= inst.stopThreads());
}

/** The instance as staged ('stage', or the first half of 'launch'). */
let staged: Promise<StagedQemu> | null = null;

scope.onmessage = (ev: MessageEvent<ToInstance>) => {
  const m = ev.data;
  switch (m.type) {
    case 'stage':
      stage(m);
      return;
    case 'run':
      void run(m);
      return;
    case 'launch':
      stage(m);
      // The stage wrote the files.
      void run({ ...m, files: {} });
      return;
    case 'successor-started':
      stopAtExec = false;
      return;
    case 'console':
    case 'read-file':
    case 'kill':
    case 'heap-top':
    case 'open-memfds':
    case 'hand-over':
      break;
  }
  if (!instance) {
    early.push(m);
    return;
  }
  handle(instance, m);
};

function handle(inst: QemuInstance, m: ToInstance): void {
  if (m.type === 'console') inst.write(m.console, m.bytes);
  else if (m.type === 'heap-top') post({ type: 'reply', id: m.id, value: inst.heapTop() });
  else if (m.type === 'open-memfds') post({ type: 'reply', id: m.id, value: inst.openMemfds() });
  else if (m.type === 'hand-over') {
    try {
      inst.handOver({ env: m.env, open: m.open, files: m.files });
    } catch (e) {
      post({ type: 'log', line: `cpr-exec: ${e instanceof Error ? e.message : String(e)}` });
    }
  }
  else if (m.type === 'read-file') {
    // Moved to the host, not copied: a saved state is as big as guest RAM.
    const bytes = inst.readFile(m.path, m.remove);
    post({ type: 'reply', id: m.id, value: bytes }, bytes ? [bytes.buffer] : []);
  }
  else if (m.type === 'kill') {
    void stopThreads(inst).then(async (stopped) => {
      // Nothing of this instance runs again: the host may start the next
      // one on the Memory while this worker is being torn down.
      for (const b of batchers.values()) b.flush();
      await asyncWork.quiesce();
      post({ type: 'parked', stopped });
      // The heap top now, with QEMU's threads stopped: they may have
      // grown the heap after exec.
      post({ type: 'reply', id: m.id, value: inst.heapTop() });
    });
  }
}

/**
 * A snapshot's save (CAPTURE_EXEC): guest RAM out of the Memory and the
 * device state out of QEMU's files, while QEMU waits here with the VM
 * stopped. The exec is refused either way: QEMU reports it, marks the
 * migration failed and runs the VM on, as after any failed exec.
 */
function capture(memory: WebAssembly.Memory | undefined, request: ExecRequest): number {
  for (const b of batchers.values()) b.flush();
  const result = captureExec(memory, request);
  post({ type: 'captured', capture: result }, 'image' in result ? [result.image.data.buffer, result.state.buffer] : []);
  return 'image' in result ? -ECANCELED : -EIO;
}

function stage(m: InstanceStage): void {
  if (staged) {
    post({ type: 'launch-failed', message: 'this instance worker was staged already' });
    return;
  }
  const names = new Set(m.execNames ?? []);
  staged = stageQemu({
    jsUrl: m.jsUrl,
    wasmUrl: m.wasmUrl,
    wasmModule: m.wasmModule,
    memory: m.memory,
    files: m.files,
    // The message's bytes are this worker's own (copied or transferred
    // to it): no second copy of a restore's state.
    ownFiles: true,
    poolAhead: true,
    onConsole: (console, bytes) => batchers.get(console)!.add(bytes),
    onLog: (line) => post({ type: 'log', line }),
    onRuntimeReady: () => post({ type: 'runtime-ready', at: wallClock() }),
    onAwaitingExec: () => post({ type: 'awaiting-exec', at: wallClock() }),
    onUnread: (console, bytes) => post({ type: 'unread', console, bytes }, [bytes.buffer]),
    onExec: (request) => {
      const name = (request.argv[0] ?? '').split('/').pop() ?? '';
      if (name === CAPTURE_EXEC) return capture(m.memory, request);
      if (!names.has(name)) {
        post({
          type: 'exec-refused',
          argv: request.argv,
          reason: `no QEMU build named "${name}"; builds: ${[...names].filter((n) => n.startsWith('qemu-')).join(', ')}`,
        });
        return -ENOENT; // QEMU reports it and restarts the VM
      }
      // The device state must be complete before this instance ends: it
      // is written and closed before QEMU exec's; check its magic.
      const states = incomingFiles(request.argv);
      const bad = states.find((p) => !isMigrationStream(request.files[p]));
      if (states.length === 0 || bad !== undefined) {
        post({
          type: 'exec-refused',
          argv: request.argv,
          reason: states.length === 0
            ? 'cpr-exec-command has no "-incoming file:PATH": the new QEMU would not find the device state'
            : `the device state ${bad} is missing or not a QEMU migration stream`,
        });
        return -EIO;
      }
      // What QEMU said before the exec first: its STOP event marks when
      // the pause began, and the host reads it when the exec comes.
      for (const b of batchers.values()) b.flush();
      post({ type: 'exec', request });
      // From the event loop, not inside QEMU's call (see endItself() in
      // instance.ts).
      setTimeout(() => {
        if (instance && stopAtExec) void stopThreads(instance);
        else killing = true;
      }, 0);
      return 0;
    },
  });
  // A stage that fails is reported by the run that needs it.
  staged.catch(() => undefined);
}

async function run(m: InstanceRun): Promise<void> {
  try {
    if (!staged) throw new Error('run before stage');
    const inst = await (await staged).run({ argv: m.argv, files: m.files, env: m.env, adopt: m.adopt, early: m.early });
    instance = inst;
    // An exit while the host ends the instance (a cancelled thread may take
    // the runtime down) is not QEMU's: the host reads the kill's reply.
    void inst.exited.then((exit) => {
      if (!killing) post({ type: 'exit', status: exit.status, message: exit.message, heapTop: inst.heapTop(), parked: exit.parked });
    });
    post({ type: 'launched' });
    for (const e of early.splice(0)) handle(inst, e);
  } catch (e) {
    post({ type: 'launch-failed', message: e instanceof Error ? e.message : String(e) });
  }
}
