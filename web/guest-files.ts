// Runs on the page's main thread (DOM).
//
// The page's file controls over playground.putFile()/getFile(): "Put
// file…", a file dropped on the page (a snapshot file is restored instead),
// and "Download from guest" for a path typed next to it.
import type { RunState, Status } from '../worker/api';
import { formatBytes } from './format';
import type { Playground } from './playground';

/** Where a file picked or dropped on the page goes: the shell's home. */
export const PUT_DIR = '/root';

/** The guest path of a file picked or dropped on the page. */
export function guestPathFor(fileName: string): string {
  return `${PUT_DIR}/${fileName.replaceAll('/', '_')}`;
}

/** A dropped file that the page restores rather than puts in the guest. */
export function isSnapshotFile(fileName: string): boolean {
  return fileName.endsWith('.cprsnap');
}

/** Whether a guest runs that files can go into (or come out of). */
export function guestTakesFiles(state: RunState): boolean {
  return state === 'running' || state === 'paused' || state === 'updating';
}

/** The name a guest file downloads under. */
export function downloadName(path: string): string {
  return path.split('/').filter(Boolean).pop() ?? 'guest-file';
}

export interface FileControls {
  putInput: HTMLInputElement;
  getPath: HTMLInputElement;
  getButton: HTMLButtonElement;
  result: HTMLOutputElement;
}

export class GuestFiles {
  constructor(
    private readonly playground: Playground,
    private readonly els: FileControls,
    private readonly report: (e: unknown) => void,
    private readonly download: (blob: Blob, name: string) => void,
  ) {
    els.putInput.addEventListener('change', () => {
      const file = els.putInput.files?.[0];
      els.putInput.value = '';
      if (file) this.put(file);
    });
    els.getButton.addEventListener('click', () => this.get(els.getPath.value.trim()));
    els.getPath.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !els.getButton.disabled) this.get(els.getPath.value.trim());
    });
  }

  /** Puts a picked or dropped file into the guest's PUT_DIR. */
  put(file: File): void {
    const path = guestPathFor(file.name);
    this.els.result.textContent = `putting ${path} (${formatBytes(file.size)})…`;
    this.playground.putFile(path, file).then(
      (size) => {
        this.els.result.textContent = `put ${path} (${formatBytes(size)})`;
        this.els.getPath.value = path;
      },
      (e: unknown) => {
        this.els.result.textContent = `could not put ${path}`;
        this.report(e);
      },
    );
  }

  private get(path: string): void {
    this.els.result.textContent = `reading ${path}…`;
    this.playground.getFile(path).then(
      (bytes) => {
        this.download(new Blob([bytes as Uint8Array<ArrayBuffer>]), downloadName(path));
        this.els.result.textContent = `downloaded ${path} (${formatBytes(bytes.length)})`;
      },
      (e: unknown) => {
        this.els.result.textContent = `could not read ${path}`;
        this.report(e);
      },
    );
  }

  /** Usable while a guest runs. */
  render(s: Status): void {
    const off = !guestTakesFiles(s.state);
    this.els.putInput.disabled = off;
    this.els.getButton.disabled = off;
  }
}
