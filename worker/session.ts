// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// A session: everything that belongs to one boot, made in one place and
// replaced as a whole. A live update replaces its instance and build, not
// the session. The host (host.ts) holds at most one; the exec path
// (live-update.ts) sees the part of it that UpdateSession names.
import { GUEST_READY_LINE, PlaygroundError } from './api';
import type { Capture, SpareLike } from './backend';
import type { ResolvedBuild } from './builds';
import { ConsoleInput } from './console-input';
import { FileChannel } from './files';
import { HmpLines } from './hmp-lines';
import type { PreparedBuild, UpdateSession } from './live-update';
import type { ResolvedBootOptions } from './options';

export interface Session extends UpdateSession {
  id: number;
  /** The user's HMP console, read for typed hints (hmp-lines.ts). */
  hmp: HmpLines;
  options: ResolvedBootOptions;
  build: ResolvedBuild;
  argv: string[];
  /** Recent serial text, to find the ready line across chunk boundaries. */
  serialTail: string;
  serialDecoder: TextDecoder;
  /** Resolved when the ready line shows up while booting. */
  onReady: (() => void) | null;
  ended: boolean;
  /** Set when QEMU crashed in a way that does not end it by itself. */
  crashed: string | null;
  /** Rejects once QEMU has ended or crashed; waits race against it. */
  failure: Promise<never>;
  fail(e: PlaygroundError): void;
  /** The next instance, started ahead of a live update. */
  spare: SpareLike | null;
  /** A snapshot save is in progress. */
  saving: boolean;
  /** Takes the capture of the save in progress (CAPTURE_EXEC). */
  onCapture: ((capture: Capture) => void) | null;
  /** The user's input to the guest, held across a live update's pause. */
  input: ConsoleInput;
  files: FileChannel;
}

/** What a boot knows of its session before QEMU starts. */
export interface SessionStart {
  id: number;
  options: ResolvedBootOptions;
  build: ResolvedBuild;
  /** The guest's QEMU arguments (no -incoming). */
  argv: string[];
  memory: WebAssembly.Memory | null;
  prepared: PreparedBuild;
  guestFiles: Record<string, Uint8Array>;
  spare: SpareLike | null;
}

/** Ends the session's instance started ahead, if any. */
export function dropSpare(s: Session): void {
  s.spare?.dispose();
  s.spare = null;
}

/** A new session, not running yet; `onTypedLine` hears each command line
 * the user types into its HMP console. */
export function newSession(start: SessionStart, onTypedLine: (session: Session, line: string) => void): Session {
  const { id, options, build, argv, memory, prepared, guestFiles, spare } = start;
  const session: Session = {
    id,
    running: null,
    hmp: new HmpLines((line) => onTypedLine(session, line)),
    options,
    build,
    argv,
    serialTail: '',
    serialDecoder: new TextDecoder(),
    onReady: null,
    ended: false,
    crashed: null,
    memory,
    prepared,
    baseArgv: argv,
    guestFiles,
    update: null,
    slotsClear: Promise.resolve(),
    stoppedAt: null,
    migrateTypedAt: null,
    spare,
    saving: false,
    onCapture: null,
    input: new ConsoleInput(() => session.running?.instance ?? null),
    files: new FileChannel((bytes) => session.input.write('files', bytes)),
    ...failureSignal(),
  };
  // A transfer in flight learns why QEMU went away.
  session.failure.catch((e: unknown) => session.files.close(e instanceof PlaygroundError ? e : new PlaygroundError('qemu-exited', String(e))));
  return session;
}

function failureSignal(): { failure: Promise<never>; fail(e: PlaygroundError): void } {
  let fail!: (e: PlaygroundError) => void;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => undefined); // observed by whoever races it
  return { failure, fail };
}

/** Resolves when the ready line appears (the host feeds the serial
 * output to session.onReady); a boot races it against session.failure. */
export function waitForReady(session: Session): Promise<void> {
  session.serialTail = '';
  return new Promise<void>((resolve) => {
    session.onReady = resolve;
  });
}

/** A promise that rejects with boot-timeout after timeoutMs, until
 * cleared; `qemuSaid` adds QEMU's recent log to the message. */
export function bootDeadline(session: Session, timeoutMs: number, qemuSaid: () => string): { expired: Promise<never>; clear(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const tail = session.serialTail.slice(-300);
      reject(
        new PlaygroundError(
          'boot-timeout',
          `the ${session.options.guest} guest did not reach its shell within ${Math.round(timeoutMs / 1000)} s ` +
            `(no "${GUEST_READY_LINE}" on the serial console). Last serial output: ${JSON.stringify(tail)}` +
            qemuSaid(),
        ),
      );
    }, timeoutMs);
  });
  expired.catch(() => undefined);
  return { expired, clear: () => clearTimeout(timer) };
}
