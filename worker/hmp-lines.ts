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

// CSI sequences (cursor moves, erase line) that QEMU's readline emits.
// eslint-disable-next-line no-control-regex
const CSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]/g;

/** Terminal bytes as plain text: no escapes, '\n' line ends, backspaces applied. */
export function plainText(s: string): string {
  let t = s.replace(CSI, '').replace(/\r\n/g, '\n').replace(/\r/g, '');
  // Apply backspaces (readline echoes "\b \b" or "\b" when editing).
  while (/[^\n\b]\x08/.test(t)) t = t.replace(/[^\n\b]\x08/g, '');
  return t.replace(/\x08/g, '');
}

export class HmpLines {
  private readonly decoder = new TextDecoder();
  /** Plain text since the last line end. */
  private tail = '';

  constructor(private readonly onCommandLine: (line: string) => void) {}

  /** Feed the monitor's output bytes, in order. */
  feed(bytes: Uint8Array): void {
    this.tail += plainText(this.decoder.decode(bytes, { stream: true }));
    let idx: number;
    // Every completed line that started right after a prompt is a command.
    while ((idx = this.tail.indexOf('\n')) >= 0) {
      const line = this.tail.slice(0, idx);
      if (line.startsWith(MONITOR_PROMPT)) this.onCommandLine(line.slice(MONITOR_PROMPT.length).trim());
      this.tail = this.tail.slice(idx + 1);
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
