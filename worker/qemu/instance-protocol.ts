// Messages between the QEMU host worker and one instance worker
// (instance.worker.ts). Shared by both threads; plain data only.
import type { ConsoleName } from './consoles';
import type { ExecRequest, HandOver } from './instance';
import type { OpenMemfd } from './memfd';
import type { StoppedThreads } from './parked';
import type { Capture } from './capture';

/** What an instance worker can do before QEMU's command line is known:
 * load the glue, fill the file system, wait at the instantiation. */
export interface InstanceStage {
  jsUrl: string;
  wasmUrl: string;
  wasmModule?: WebAssembly.Module;
  memory?: WebAssembly.Memory;
  files: Record<string, Uint8Array>;
  /** Names QEMU may exec (argv[0] of cpr-exec-command); others get ENOENT. */
  execNames?: string[];
}

/** What starts QEMU on a staged instance worker. */
export interface InstanceRun {
  argv: string[];
  /** Files the stage did not bring (a migration's device state). */
  files: Record<string, Uint8Array>;
  env?: Record<string, string>;
  adopt?: OpenMemfd[];
  /** Started before the exec it replaces: QEMU waits at its CPR state
   * for 'hand-over' (the cpr-early series). */
  early?: boolean;
}

/** Host → instance worker. */
export type ToInstance =
  /** Before a live update's pause: all of the start that needs no argv. */
  | ({ type: 'stage' } & InstanceStage)
  /** The rest, on a staged worker. */
  | ({ type: 'run' } & InstanceRun)
  /** Both at once (a boot, a restore, a fallback). */
  | ({ type: 'launch' } & InstanceStage & InstanceRun)
  /** Input for one of QEMU's consoles. */
  | { type: 'console'; console: ConsoleName; bytes: Uint8Array }
  /** Reply: the file's bytes (transferred) or null. `remove`: and out of
   * QEMU's file system with it. */
  | { type: 'read-file'; id: number; path: string; remove: boolean }
  /** End QEMU's pthread workers now, then answer with the heap top: the
   * host terminates this worker SETTLE_MS after the answer. */
  | { type: 'kill'; id: number }
  | { type: 'heap-top'; id: number }
  /** Reply: the fds open on memfds now. */
  | { type: 'open-memfds'; id: number }
  /** An instance started early: the exec it replaces came. */
  | ({ type: 'hand-over' } & HandOver)
  /** A QEMU was started early to take this one's exec: after an accepted
   * exec, leave QEMU's threads to 'kill' (their end would share the CPU
   * with the successor's start, which the guest waits for). */
  | { type: 'successor-started' };

/** Instance worker → host. Times are wall clock (performance.timeOrigin +
 * performance.now()), comparable across workers. */
export type FromInstance =
  /** A 'stage' is done (or failed, which the run that needs it reports):
   * the glue is loaded and the file system filled. */
  | { type: 'staged' }
  | { type: 'launched' }
  | { type: 'launch-failed'; message: string }
  | { type: 'runtime-ready'; at: number }
  /** Started early: QEMU reached its CPR state and waits for 'hand-over'. */
  | { type: 'awaiting-exec'; at: number }
  /** Output of one of QEMU's consoles, batched. */
  | { type: 'console'; console: ConsoleName; bytes: Uint8Array }
  | { type: 'log'; line: string }
  /** QEMU ended itself; `parked`: where its ended threads waited. */
  | { type: 'exit'; status: number; message?: string; heapTop: number; parked?: StoppedThreads }
  | { type: 'exec'; request: ExecRequest }
  /** Console input that came after the exec, back to the host. */
  | { type: 'unread'; console: ConsoleName; bytes: Uint8Array }
  | { type: 'exec-refused'; argv: string[]; reason: string }
  /** A CAPTURE_EXEC came (its buffers transferred). */
  | { type: 'captured'; capture: Capture }
  /** QEMU started a thread (its struct's address). */
  | { type: 'thread'; thread: number }
  /** Before the reply to 'kill': how QEMU's threads ended and the futex
   * words they were parked on (parked.ts). By then this worker's own
   * runtime is quiet: it will not run the module's code again (quiesce.ts). */
  | { type: 'parked'; stopped: StoppedThreads }
  | { type: 'reply'; id: number; value: ReplyValue };

/** What a request's reply carries. */
export type ReplyValue = Uint8Array | number | null | OpenMemfd[];

const PREWARM = 'qemu-instance prewarmed';

/**
 * The name of an instance worker started ahead of its launch (a boot's,
 * or a live update's before the pause): it loads the build's glue and
 * starts `threads` pthread workers as soon as it runs, so that the launch
 * only instantiates. Said in its name rather than by a message: a message
 * to a worker that is still starting waits for the event loop of the host
 * worker, which a boot's downloads keep busy (seen: one posted as they
 * began reached its worker 0.8-1.2 s after the worker was up).
 */
export function prewarmName(jsUrl: string, threads: number): string {
  return `${PREWARM} ${threads} ${jsUrl}`;
}

/** What prewarmName() said, or null for a worker not started ahead. */
export function parsePrewarmName(name: string): { jsUrl: string; threads: number } | null {
  const m = new RegExp(`^${PREWARM} (\\d+) (\\S+)$`).exec(name);
  return m ? { threads: Number(m[1]), jsUrl: m[2]! } : null;
}

export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}
