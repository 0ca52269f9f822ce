// Runs on the page's main thread (DOM).
//
// One xterm.js terminal fitted to its pane: refits when the pane resizes
// (window resize, tab switch, presenter mode) and owns its observers.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';

export const NORMAL_FONT = 14;
export const PRESENTER_FONT = 24;

/** What a pane does to its console's output: modes to set on the terminal
 * (again after each reset), and a rewrite of the bytes. */
export interface OutputFilter {
  modes: string;
  transform(bytes: Uint8Array): Uint8Array;
}

export class TerminalPane {
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private readonly observer: ResizeObserver;

  constructor(readonly element: HTMLElement, onInput: (data: string) => void, private readonly filter?: OutputFilter) {
    this.term = new Terminal({
      fontSize: NORMAL_FONT,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      cursorBlink: true,
      convertEol: false,
      scrollback: 5000,
      theme: { background: '#111418', foreground: '#e6e6e6' },
    });
    this.term.loadAddon(this.fit);
    this.term.open(element);
    this.term.onData(onInput);
    this.observer = new ResizeObserver(() => this.refit());
    this.observer.observe(element);
    this.refit();
    if (filter) this.term.write(filter.modes);
  }

  /** A console's output. */
  write(data: Uint8Array): void {
    this.term.write(this.filter ? this.filter.transform(data) : data);
  }

  /** Empties the terminal for a new guest. */
  reset(): void {
    this.term.reset();
    if (this.filter) this.term.write(this.filter.modes);
  }

  setFontSize(px: number): void {
    this.term.options.fontSize = px;
    this.refit();
  }

  /** Hidden panes have no size; fit only what is shown. */
  refit(): void {
    if (this.element.offsetParent === null || this.element.clientWidth === 0) return;
    try {
      this.fit.fit();
    } catch {
      /* not laid out yet */
    }
  }

  focus(): void {
    this.term.focus();
  }

  dispose(): void {
    this.observer.disconnect();
    this.term.dispose();
  }
}
