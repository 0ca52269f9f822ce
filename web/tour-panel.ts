// Runs on the page's main thread (DOM).
//
// The tour's side panel: one step at a time, its explanation, the line it
// will type; "Run" types that line into the right console, visibly, as a
// person would, then checks the result; "Next" is offered only once the
// check passed, and a failed check says what went wrong. Buttons only, so
// the keyboard works as everywhere else.
import type { BootOptions } from '../worker/api';
import type { PlaygroundApi } from './playground';
import { pauseSentence, TOURS, type Tour, type TourId, type TourMark } from './tour';

export interface TourHost {
  /** Shows the serial or the monitor tab. */
  showConsole(console: 'serial' | 'monitor'): void;
  /** Boots as the page's Boot button does (terminals cleared, errors shown). */
  boot(options: BootOptions): Promise<unknown>;
}

/** Characters typed per tick, and the tick: fast enough for a long line,
 * slow enough to be seen. */
const TYPE_CHUNK = 3;
const TYPE_TICK_MS = 12;

function el<T extends HTMLElement>(root: HTMLElement, id: string): T {
  const e = root.querySelector<T>(`#${id}`);
  if (!e) throw new Error(`the tour panel is missing #${id}`);
  return e;
}

export class TourPanel {
  private tour: Tour | null = null;
  private index = 0;
  private running = false;
  private readonly title: HTMLElement;
  private readonly progress: HTMLElement;
  private readonly stepTitle: HTMLElement;
  private readonly text: HTMLElement;
  private readonly command: HTMLElement;
  private readonly status: HTMLElement;
  private readonly runBtn: HTMLButtonElement;
  private readonly nextBtn: HTMLButtonElement;

  constructor(
    private readonly root: HTMLElement,
    private readonly pg: PlaygroundApi,
    private readonly host: TourHost,
  ) {
    this.title = el(root, 'tour-title');
    this.progress = el(root, 'tour-progress');
    this.stepTitle = el(root, 'tour-step-title');
    this.text = el(root, 'tour-text');
    this.command = el(root, 'tour-command');
    this.status = el(root, 'tour-status');
    this.runBtn = el(root, 'tour-run');
    this.nextBtn = el(root, 'tour-next');
    this.runBtn.addEventListener('click', () => void this.run());
    this.nextBtn.addEventListener('click', () => this.show(this.index + 1));
    el<HTMLButtonElement>(root, 'tour-close').addEventListener('click', () => this.close());
  }

  /** Opens tour `id` at step `index` (0-based; a deep link may start later). */
  open(id: TourId, index = 0): void {
    this.tour = TOURS[id];
    this.root.hidden = false;
    this.title.textContent = this.tour.title;
    this.show(Math.max(0, Math.min(index, this.tour.steps.length - 1)));
    this.runBtn.focus();
  }

  close(): void {
    this.tour = null;
    this.root.hidden = true;
  }

  private show(index: number): void {
    const tour = this.tour;
    if (!tour) return;
    if (index >= tour.steps.length) {
      this.progress.textContent = 'Done';
      this.stepTitle.textContent = 'The tour is complete';
      this.text.textContent = 'Every step checked out. Close the panel, or open the other tour.';
      this.command.hidden = true;
      this.status.textContent = '';
      this.runBtn.disabled = true;
      this.nextBtn.disabled = true;
      return;
    }
    this.index = index;
    const step = tour.steps[index]!;
    this.progress.textContent = `Step ${index + 1} of ${tour.steps.length}`;
    this.stepTitle.textContent = step.title;
    this.text.textContent = step.text;
    const line = step.console === 'page' ? '' : step.command(this.pg);
    this.command.hidden = line === '';
    this.command.textContent = line ? `${step.console === 'monitor' ? '(qemu) ' : '# '}${line}` : '';
    this.status.textContent = '';
    this.status.dataset.result = '';
    this.runBtn.disabled = false;
    this.runBtn.textContent = step.console === 'page' ? (index === 0 ? 'Boot' : 'Check') : 'Run';
    this.nextBtn.disabled = true;
  }

  /** Types the step's line (or does its page action), then checks it. */
  private async run(): Promise<void> {
    const tour = this.tour;
    if (!tour || this.running) return;
    const step = tour.steps[this.index]!;
    this.running = true;
    this.runBtn.disabled = true;
    let monitorText = '';
    const decoder = new TextDecoder();
    const stopRecording = this.pg.onMonitor((b) => (monitorText += decoder.decode(b, { stream: true })));
    const mark: TourMark = { serialOffset: this.pg.serialOffset(), monitorText: () => monitorText, updates: this.pg.liveUpdates().length };
    try {
      this.report('running…', '');
      if (step.console === 'page') {
        if (this.index === 0) void this.host.boot(tour.boot).catch(() => undefined);
      } else {
        const line = step.command(this.pg);
        this.host.showConsole(step.console);
        await this.type(step.console, line);
      }
      this.report('checking…', '');
      const problem = await step.check(this.pg, mark);
      if (problem === undefined) {
        const extra = this.index === tour.steps.length - 1 && tour.id === 'live-update' ? ` ${pauseSentence(this.pg.liveUpdates().at(-1))}` : '';
        this.report(`✓ done.${extra}`, 'ok');
        this.nextBtn.disabled = false;
        this.nextBtn.focus();
      } else {
        this.report(`✗ ${problem}. Fix it and press Run again.`, 'failed');
        this.runBtn.disabled = false;
      }
    } catch (e) {
      this.report(`✗ ${e instanceof Error ? e.message : String(e)}`, 'failed');
      this.runBtn.disabled = false;
    } finally {
      stopRecording();
      this.running = false;
    }
  }

  private report(text: string, result: '' | 'ok' | 'failed'): void {
    this.status.textContent = text;
    this.status.dataset.result = result;
  }

  /** Sends `line` and Enter a few characters at a time, as if typed. */
  private async type(console: 'serial' | 'monitor', line: string): Promise<void> {
    const send = (s: string): Promise<void> => (console === 'serial' ? this.pg.sendSerial(s) : this.pg.sendMonitor(s));
    for (let i = 0; i < line.length; i += TYPE_CHUNK) {
      await send(line.slice(i, i + TYPE_CHUNK));
      await new Promise((r) => setTimeout(r, TYPE_TICK_MS));
    }
    await send(console === 'serial' ? '\n' : '\r');
  }
}
