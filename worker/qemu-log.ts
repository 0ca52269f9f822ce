// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// What QEMU said lately, and the errors it explains. QEMU's log (its
// stderr, the Emscripten glue's messages) goes to the page as it comes;
// the host keeps its last lines here, because an exit status alone seldom
// says why QEMU ended: error messages end in "QEMU said: ...".
import { PlaygroundError } from './api';

const LOG_LINES = 40;
/** What the Emscripten glue logs when one of QEMU's threads traps. */
const CRASH = /worker sent an error!|Uncaught RuntimeError/;
/** What Emscripten says when the wasm itself cannot be used. */
const LOAD_FAILURE = /CompileError|LinkError|failed to asynchronously prepare wasm|fetching of the wasm failed|WebAssembly\.(instantiate|compile)/;

/** Whether a log line tells that one of QEMU's threads trapped: the glue
 * only logs it, and QEMU then hangs. */
export function isCrash(line: string): boolean {
  return CRASH.test(line);
}

export class QemuLog {
  private readonly lines: string[] = [];

  add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > LOG_LINES) this.lines.shift();
  }

  /** Forgets what an earlier QEMU said (a new boot starts). */
  clear(): void {
    this.lines.length = 0;
  }

  /** ". QEMU said: a | b" with its last lines but `except`, or ''. */
  said(except = ''): string {
    // Our own diagnostics ([live-update] ...) stay in the page's log only.
    const lines = this.lines.filter((l) => l.trim() !== '' && l !== except && !l.startsWith('[live-update]')).slice(-8);
    return lines.length ? `. QEMU said: ${lines.join(' | ')}` : '';
  }

  /** Why a session's QEMU ended (or crashed: `session.crashed` says
   * why), as the page's error. */
  exitError(session: { build: { name: string }; crashed: string | null }, exit: { status: number; message?: string }): PlaygroundError {
    if (session.crashed) {
      const reason = session.crashed;
      return new PlaygroundError('qemu-exited', `${session.build.name} crashed: ${reason}${this.said(reason)}`);
    }
    const why = `${exit.message ?? ''} ${this.lines.join(' ')}`;
    // Emscripten aborts (rather than rejecting) when the wasm does not
    // compile or link: that is a load failure, not QEMU's own exit.
    if (LOAD_FAILURE.test(why)) {
      return new PlaygroundError(
        'load-failed',
        `${session.build.name} failed to start: its wasm did not load (${exit.message ?? `status ${exit.status}`})` +
          `${this.said()}; run \`npm run artifacts\` and reload`,
      );
    }
    return new PlaygroundError(
      'qemu-exited',
      `${session.build.name} exited with status ${exit.status}${exit.message ? ` (${exit.message})` : ''}${this.said()}`,
    );
  }
}
