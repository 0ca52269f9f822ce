// A character device in the Emscripten file system that connects a QEMU
// chardev (`-chardev pipe,path=/dev/...`) to JavaScript.
// Its ops run on the module's main thread (the Worker that loaded QEMU, or
// Node's main thread): QEMU's pthreads proxy their file-system calls there.

import { concatBytes } from './bytes';
import { EAGAIN, POLLIN, POLLOUT, S_IFCHR, type EmscriptenFS, type EmscriptenNode } from './emscripten';

export class JsCharDevice {
  private readonly pending: Uint8Array[] = [];
  private node: EmscriptenNode | undefined;

  constructor(
    private readonly path: string,
    private readonly onOutput: (bytes: Uint8Array) => void,
  ) {}

  /** Create the device node; call from preRun, before QEMU opens it. */
  install(fs: EmscriptenFS, major: number): void {
    const dev = fs.makedev(major, 0);
    fs.registerDevice(dev, {
      read: (_stream, buffer, offset, length) => this.read(fs, buffer, offset, length),
      write: (_stream, buffer, offset, length) => {
        // Copy: the buffer is a view of wasm memory that QEMU reuses.
        this.onOutput(buffer.slice(offset, offset + length));
        return length;
      },
      poll: () => (this.pending.length > 0 ? POLLIN : 0) | POLLOUT,
    });
    fs.mkdev(this.path, S_IFCHR | 0o666, dev);
    this.node = fs.lookupPath(this.path).node;
  }

  /** Queue input for QEMU and wake a poll() waiting on this device. */
  input(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pending.push(bytes.slice());
    this.node?.notifyListeners(POLLIN);
  }

  /** What QEMU has not read yet, taken out of the device (at exec: the
   * next instance's device gets it), or null. */
  takeUnread(): Uint8Array | null {
    if (this.pending.length === 0) return null;
    const all = concatBytes(this.pending);
    this.pending.length = 0;
    return all;
  }

  /** Puts bytes taken by takeUnread() back in front (the exec was refused). */
  putBack(bytes: Uint8Array): void {
    if (bytes.length > 0) this.pending.unshift(bytes);
  }

  private read(fs: EmscriptenFS, buffer: Uint8Array, offset: number, length: number): number {
    // Never return 0: QEMU would take it for end of file and close the chardev.
    if (this.pending.length === 0) throw new fs.ErrnoError(EAGAIN);
    let done = 0;
    while (done < length && this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, length - done);
      buffer.set(head.subarray(0, n), offset + done);
      done += n;
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    }
    return done;
  }
}
