// Runs on the page's main thread; no DOM.
//
// QEMU's HMP line editor redraws its line after each input by moving the
// cursor back with one ESC [ D per character, then printing the whole line.
// A terminal's cursor-left stops at the first column of the row, so a line
// longer than the terminal is redrawn over its own last row: seen in the
// tour, where the cpr-exec-command line, typed visibly, filled the monitor
// with a dozen copies of itself. Backspace with reverse wraparound
// (DECSET 45) moves into the wrapped row above; xterm.js supports that for
// backspace only, so the monitor's output gets backspaces instead.

/** Written to the monitor's terminal once: backspace may wrap back. */
export const REVERSE_WRAPAROUND = '\x1b[?45h';

const ESC = 0x1b;
const CSI = 0x5b; // '['
const LEFT = 0x44; // 'D'
const BACKSPACE = 0x08;

/** Rewrites ESC [ D into backspace in a byte stream split anywhere. */
export class CursorLeftAsBackspace {
  /** The end of the last chunk when it was the start of ESC [ D. */
  private held: number[] = [];

  transform(chunk: Uint8Array): Uint8Array {
    const bytes = this.held.length ? Uint8Array.of(...this.held, ...chunk) : chunk;
    this.held = [];
    const out: number[] = [];
    let i = 0;
    while (i < bytes.length) {
      const b = bytes[i]!;
      if (b !== ESC) {
        out.push(b);
        i++;
        continue;
      }
      const rest = bytes.length - i;
      if (rest < 3 && (rest === 1 || bytes[i + 1] === CSI)) {
        this.held = [...bytes.subarray(i)];
        break;
      }
      if (bytes[i + 1] === CSI && bytes[i + 2] === LEFT) {
        out.push(BACKSPACE);
        i += 3;
      } else {
        out.push(b);
        i++;
      }
    }
    return Uint8Array.from(out);
  }
}
