// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// A boot's 'loading' phase: everything QEMU needs before it starts, all
// at once. QEMU's wasm downloads and compiles (once: a booted snapshot's
// boot started it while the snapshot downloaded) and the guest files
// download, with one combined progress bar; meanwhile the instance worker
// and QEMU's pthread workers start, and the Memory is made (a snapshot's
// comes with its RAM already placed). The host (host.ts) then starts QEMU
// with what this gathered.
import { PlaygroundError, type Progress } from './api';
import type { GuestPlan, QemuBackend, SpareLike } from './backend';
import type { BuildStore } from './build-store';
import type { ResolvedBuild } from './builds';
import type { PreparedBuild } from './live-update';
import type { Restore } from './save-restore';

export interface BootLoadRequest {
  store: BuildStore;
  backend: QemuBackend;
  build: ResolvedBuild;
  plan: GuestPlan;
  /** The build runs on a shared Memory (the live-update layout). */
  liveUpdatable: boolean;
  /** A snapshot to restore instead of booting, or null. */
  restore: Restore | null;
  createMemory(): WebAssembly.Memory;
  progress(p: Progress): void;
  /** Throws when the boot was cancelled meanwhile. */
  checkCurrent(): void;
}

export interface BootLoad {
  compiled: PreparedBuild;
  /** Path inside QEMU's file system → the guest file's bytes. */
  files: Record<string, Uint8Array>;
  memory: WebAssembly.Memory | null;
  /** The instance worker to start QEMU in; its owner is the caller now. */
  spare: SpareLike | null;
}

/** Gathers what the boot needs; on any failure (or a cancelled boot) it
 * ends the instance worker it started. */
export async function loadForBoot(r: BootLoadRequest): Promise<BootLoad> {
  const { store, build, plan, restore } = r;
  const wasmPart = { loaded: 0, total: 0 };
  const filesPart = { loaded: 0, total: 0, label: '' };
  const report = (label: string): void =>
    r.progress({ phase: 'download', label, loaded: wasmPart.loaded + filesPart.loaded, total: wasmPart.total + filesPart.total });
  // A booted snapshot's boot started the instance worker with its downloads.
  const spare = (await restore?.spare?.take()) ?? r.backend.prewarm?.(store.url(build.jsPath)) ?? null;
  let compiled: PreparedBuild;
  let fetched: Map<string, Uint8Array>;
  let memory: WebAssembly.Memory | null;
  try {
    const loading = Promise.all([
      store.prepare(build, (loaded, total) => {
        Object.assign(wasmPart, { loaded, total: total || loaded });
        report(`downloading ${build.wasmPath}`);
      }),
      restore?.guestFiles ??
        store.fetchAll(Object.keys(plan.files), (loaded, total, label) => {
          Object.assign(filesPart, { loaded, total, label });
          report(label);
        }),
    ]);
    // A snapshot's RAM was placed into its Memory as the file was read;
    // QEMU takes it over as after a cpr-exec (its fds, its CPR state) and
    // loads the device state only.
    if (restore?.ram && !r.liveUpdatable) throw new PlaygroundError('bad-snapshot', `${build.name} cannot restore a RAM image: it does not run on a shared Memory`);
    memory = restore?.ram?.memory ?? (r.liveUpdatable ? r.createMemory() : null);
    [compiled, fetched] = await loading;
    r.checkCurrent();
  } catch (e) {
    spare?.dispose();
    throw e;
  }
  const files: Record<string, Uint8Array> = {};
  for (const [artifact, guestPath] of Object.entries(plan.files)) files[guestPath] = fetched.get(artifact)!;
  return { compiled, files, memory, spare };
}
