// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The user's input to the guest (serial keys, HMP keys, the file channel's
// bytes) across a live update: nothing typed or sent during the pause is
// lost. From the old QEMU's exec until the update ends, input is held here;
// what the old instance had not read at exec, and what reached it after,
// come back from it (instance.ts) and go first. When the update ends, all
// of it goes, in order, to whichever instance runs the VM then.
import type { ConsoleBytes, ConsoleName, QemuInstanceLike } from './backend';

interface Chunk {
  console: ConsoleName;
  bytes: Uint8Array;
}

export class ConsoleInput {
  /** Unread by the old instance at exec. */
  private carried: Chunk[] = [];
  /** Sent to the old instance after its exec; it sent them back. */
  private bounced: Chunk[] = [];
  /** Sent by the user while held. */
  private held: Chunk[] | null = null;

  /** `target`: the instance that runs the VM now, if any. */
  constructor(private readonly target: () => QemuInstanceLike | null) {}

  write(console: ConsoleName, bytes: Uint8Array): void {
    if (this.held) this.held.push({ console, bytes: bytes.slice() });
    else this.target()?.write(console, bytes);
  }

  /** The running QEMU exec'd: hold input until release(). */
  hold(unread: ConsoleBytes): void {
    this.held ??= [];
    for (const [console, bytes] of Object.entries(unread) as [ConsoleName, Uint8Array][]) this.carried.push({ console, bytes });
  }

  /** Input the old instance got after its exec. */
  bounce(console: ConsoleName, bytes: Uint8Array): void {
    this.bounced.push({ console, bytes });
  }

  /** The update ended: everything held goes to the instance that runs the
   * VM now (none when the VM was lost: it is dropped). */
  release(): void {
    const all = [...this.carried, ...this.bounced, ...(this.held ?? [])];
    this.carried = [];
    this.bounced = [];
    this.held = null;
    const to = this.target();
    if (to) for (const c of all) to.write(c.console, c.bytes);
  }

  get holding(): boolean {
    return this.held !== null;
  }
}
