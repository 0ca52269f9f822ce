// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// Reads the user's HMP console (the monitor tab) and reports each command
// line QEMU accepted. The host never writes to that console and never
// takes its state from it (QMP does that, worker/qmp.ts); the lines only
// serve as early hints: a typed `migrate_set_parameter cpr-exec-command`
// names the build to download and compile while the user still types, so
// no compile falls into the pause, and a typed `migrate` marks when the
// user started the update.

export const MONITOR_PROMPT = '(qemu) ';

/**
 * Follows one terminal line the way a terminal would, so that what QEMU's
 * line editor drew is read back as the line it shows. The editor redraws
 * after every byte it reads: the cursor back over the old input (one
 * ESC [ D per character), the whole input again, then erase to the end of
 * the line (ESC [ K). Dropping the escapes instead of applying them reads
 * "mmimig..." for a typed "migrate" (seen: no typed line was recognised).
 */
class TerminalLine {
  private chars: string[] = [];
  private cursor = 0;
  /** An escape sequence cut by the end of a chunk. */
  private escape = '';

  /** Feeds text; returns the lines it ended, as shown. */
  write(text: string): string[] {
    const done: string[] = [];
    for (const ch of text) {
      if (this.escape) {
        this.escape += ch;
        this.applyEscape();
        continue;
      }
      switch (ch) {
        case '\x1b':
          this.escape = ch;
          break;
        case '\n':
          done.push(this.chars.join(''));
          this.chars = [];
          this.cursor = 0;
          break;
        case '\r':
          this.cursor = 0;
          break;
        case '\b':
          this.cursor = Math.max(0, this.cursor - 1);
          break;
        default:
          if (ch < ' ') break; // other controls (bell) draw nothing
          while (this.chars.length < this.cursor) this.chars.push(' ');
          this.chars[this.cursor++] = ch;
      }
    }
    return done;
  }

  /** Applies a complete escape sequence in `escape`, or waits for more. */
  private applyEscape(): void {
    const e = this.escape;
    // ESC ( B and ESC ) B (character sets): three bytes; ESC = and other
    // two-byte sequences: done. Neither draws anything.
    if (e[1] === '(' || e[1] === ')') {
      if (e.length === 3) this.escape = '';
      return;
    }
    if (e[1] !== '[') {
      this.escape = '';
      return;
    }
    const m = /^\x1b\[([0-9;?]*)([@-~])$/.exec(e);
    if (!m) {
      // Still reading parameters (or a malformed sequence: dropped).
      if (!/^\x1b\[[0-9;?]*$/.test(e)) this.escape = '';
      return;
    }
    this.escape = '';
    const n = Math.max(1, Number(m[1]!.split(';')[0]) || 1);
    switch (m[2]) {
      case 'D':
        this.cursor = Math.max(0, this.cursor - n);
        return;
      case 'C':
        this.cursor += n;
        return;
      case 'K':
        // Erase from the cursor to the end of the line (QEMU sends no parameter).
        if (m[1] === '' || m[1] === '0') this.chars.length = Math.min(this.chars.length, this.cursor);
        return;
      default:
        return; // colours, cursor reports, modes: nothing on the line
    }
  }
}

export class HmpLines {
  private readonly decoder = new TextDecoder();
  private readonly line = new TerminalLine();

  constructor(private readonly onCommandLine: (line: string) => void) {}

  /** Feed the monitor's output bytes, in order. */
  feed(bytes: Uint8Array): void {
    // Every completed line that started with the prompt is a command.
    for (const line of this.line.write(this.decoder.decode(bytes, { stream: true }))) {
      if (line.startsWith(MONITOR_PROMPT)) this.onCommandLine(line.slice(MONITOR_PROMPT.length).trim());
    }
  }
}

/** What a typed HMP line means for a live update, if anything. */
export type TypedHint =
  | { kind: 'exec-target'; name: string }
  | { kind: 'migrate' }
  | { kind: 'none' };

export function typedHint(line: string): TypedHint {
  const words = line.split(/\s+/);
  if (words[0] === 'migrate_set_parameter' && (words[1] === 'cpr-exec-command' || words[1] === 'cpr-exec-args') && words[2]) {
    return { kind: 'exec-target', name: words[2].replace(/^['"]|['"]$/g, '') };
  }
  if (words[0] === 'migrate') return { kind: 'migrate' };
  return { kind: 'none' };
}
