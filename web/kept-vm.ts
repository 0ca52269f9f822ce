// Runs on the page's main thread.
//
// "Keep this VM": one snapshot file kept in the browser's origin-private
// file system (OPFS), to resume on a later visit. The bytes are the same
// snapshot file saveSnapshot() downloads, so a kept VM is checked whole
// like any other file when it is resumed.

const FILE = 'kept-vm.cprsnap';

/** What the page says about the kept VM. */
export interface KeptVm {
  bytes: number;
  /** When it was kept (the file's modification time). */
  keptAt: Date;
}

function storageProblem(): string | undefined {
  return typeof navigator.storage?.getDirectory === 'function'
    ? undefined
    : 'this browser has no origin-private file system (navigator.storage.getDirectory), so a VM cannot be kept here';
}

export class KeptVmStore {
  /** Why a VM cannot be kept in this browser, or undefined. */
  readonly problem = storageProblem();

  async keep(file: Blob): Promise<KeptVm> {
    if (this.problem) throw new Error(this.problem);
    // Ask the browser not to evict it under storage pressure (it may say no).
    await navigator.storage.persist?.().catch(() => false);
    const dir = await navigator.storage.getDirectory();
    const handle = await dir.getFileHandle(FILE, { create: true });
    const out = await handle.createWritable();
    await out.write(file);
    await out.close();
    return (await this.kept())!;
  }

  async kept(): Promise<KeptVm | null> {
    if (this.problem) return null;
    try {
      const dir = await navigator.storage.getDirectory();
      const file = await (await dir.getFileHandle(FILE)).getFile();
      return { bytes: file.size, keptAt: new Date(file.lastModified) };
    } catch {
      return null; // nothing kept
    }
  }

  async read(): Promise<File> {
    if (this.problem) throw new Error(this.problem);
    const dir = await navigator.storage.getDirectory();
    return (await dir.getFileHandle(FILE)).getFile();
  }

  async forget(): Promise<void> {
    if (this.problem) return;
    const dir = await navigator.storage.getDirectory();
    await dir.removeEntry(FILE).catch(() => undefined);
  }
}
