// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// Request/response on top of QEMU's HMP monitor, which is a byte stream:
// QEMU prints `(qemu) `, echoes what it is sent, and prints a command's
// output followed by the next prompt. A command's output is what comes
// between the echoed line and the next prompt. The same chardev also feeds
// the interactive monitor tab, so this class only reads the stream; it
// never swallows bytes.
import { DEFAULT_MONITOR_TIMEOUT_MS, PlaygroundError } from './api';

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

interface Pending {
  command: string;
  resolve(output: string): void;
  reject(e: Error): void;
  timeoutMs: number;
  timer?: ReturnType<typeof setTimeout>;
  /** Plain text received since the command was sent. */
  text: string;
  sent: boolean;
}

export class MonitorChannel {
  private readonly decoder = new TextDecoder();
  private readonly queue: Pending[] = [];
  private current: Pending | null = null;
  /** Plain text since the last prompt; used to spot prompts split over chunks. */
  private tail = '';
  private atPrompt = false;
  private closed: Error | null = null;

  constructor(
    private readonly write: (bytes: Uint8Array) => void,
    /** Every command line QEMU accepted, typed or sent (for state tracking). */
    private readonly onCommandLine: (line: string) => void = () => {},
  ) {}

  /** Feed the monitor's output bytes, in order. */
  feed(bytes: Uint8Array): void {
    const text = plainText(this.decoder.decode(bytes, { stream: true }));
    if (text === '') return;
    if (this.current?.sent) this.current.text += text;
    this.tail += text;
    // Every completed line that started right after a prompt is a command.
    let idx: number;
    while ((idx = this.tail.indexOf('\n')) >= 0) {
      const line = this.tail.slice(0, idx);
      if (line.startsWith(MONITOR_PROMPT)) this.onCommandLine(line.slice(MONITOR_PROMPT.length).trim());
      this.tail = this.tail.slice(idx + 1);
    }
    this.atPrompt = this.tail.endsWith(MONITOR_PROMPT);
    if (this.atPrompt && this.current?.sent) this.finishCurrent();
    this.pump();
  }

  /** Runs one command; resolves with its output, trimmed of the echo and prompt. */
  command(command: string, timeoutMs = DEFAULT_MONITOR_TIMEOUT_MS): Promise<string> {
    if (this.closed) return Promise.reject(this.closed);
    if (/[\r\n]/.test(command)) {
      return Promise.reject(new PlaygroundError('bad-options', 'a monitor command is one line; send several commands one by one'));
    }
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ command: command.trim(), resolve, reject, timeoutMs, text: '', sent: false });
      this.pump();
    });
  }

  /**
   * A new QEMU took over the chardev (live update): wait for its banner's
   * prompt before sending more. A command in flight (e.g. the `migrate`
   * whose prompt the old QEMU never printed) ends with what it printed:
   * sending it again to the new QEMU would run it twice.
   */
  reset(): void {
    this.tail = '';
    this.atPrompt = false;
    const p = this.current;
    if (p) {
      this.current = null;
      clearTimeout(p.timer);
      p.resolve(MonitorChannel.extractOutput(p.text, p.command));
    }
  }

  /** Fails every waiting command (QEMU ended). */
  close(reason: Error): void {
    if (this.closed) return; // the first reason is the real one
    this.closed = reason;
    const all = [...(this.current ? [this.current] : []), ...this.queue.splice(0)];
    this.current = null;
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(reason);
    }
  }

  private pump(): void {
    if (this.current || !this.atPrompt) return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next;
    next.sent = true;
    this.atPrompt = false;
    next.timer = setTimeout(() => {
      if (this.current !== next) return;
      this.current = null;
      next.reject(
        new PlaygroundError(
          'monitor-timeout',
          `monitor command "${next.command}" gave no prompt back within ${next.timeoutMs} ms; ` +
            `output so far: ${JSON.stringify(next.text.slice(-200))}`,
        ),
      );
      this.pump();
    }, next.timeoutMs);
    this.write(new TextEncoder().encode(next.command + '\r'));
  }

  private finishCurrent(): void {
    const p = this.current!;
    this.current = null;
    clearTimeout(p.timer);
    p.resolve(MonitorChannel.extractOutput(p.text, p.command));
  }

  /** The output part of what QEMU printed after a command was sent. */
  static extractOutput(text: string, command: string): string {
    let body = text;
    // Drop the echo: everything up to the first line end (the echoed line).
    const nl = body.indexOf('\n');
    if (nl >= 0 && body.slice(0, nl).trim().endsWith(command)) body = body.slice(nl + 1);
    else if (nl >= 0 && command !== '' && body.slice(0, nl).includes(command)) body = body.slice(nl + 1);
    if (body.endsWith(MONITOR_PROMPT)) body = body.slice(0, -MONITOR_PROMPT.length);
    return body.replace(/\n$/, '');
  }
}
