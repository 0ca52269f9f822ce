// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// Snapshots as the host takes and gives them (snapshot.ts is the file
// itself). Saving: guest RAM straight out of the live-update layout when
// QEMU can cpr-exec, else a migration with RAM; the VM runs on. Restoring:
// the file is checked whole, against this page's builds and RAM, before
// the running guest is touched; then a new QEMU starts with -incoming from
// the saved state instead of booting (host.ts starts it).
import { PlaygroundError, type RestoreOptions, type SnapshotInfo } from './api';
import { buildLayoutProblem, CAPTURE_EXEC, ImageStream, type Capture, type OpenMemfd, type QemuBackend, type SpareLike } from './backend';
import type { BuildStore } from './build-store';
import type { ResolvedBuild } from './builds';
import { cprExecCommand, saveState, type Running, type StartRequest } from './live-update';
import { ramError, type ResolvedBootOptions } from './options';
import { QmpError } from './qmp';
import type { Session } from './session';
import { snapshotFile, writeSnapshot, type SnapshotContent, type SnapshotFile } from './snapshot';

/** Guest RAM of a snapshot of format 2, back where it was in a fresh
 * Memory (its regions, its pages), and what the next QEMU needs to take
 * it over as after a cpr-exec: the fds to reopen, its CPR variables. */
export interface PlacedRam {
  memory: WebAssembly.Memory;
  open: OpenMemfd[];
  env: Record<string, string>;
}

/** A snapshot to restore instead of a boot: its arguments, QEMU's state
 * and, for a snapshot of format 2, guest RAM already placed. */
export interface Restore {
  argv: string[];
  state: Uint8Array;
  ram?: PlacedRam;
  /** The guest's booted snapshot: it sits at a shell prompt that the new
   * terminal never saw, so press Enter for a fresh one. */
  booted?: boolean;
  /** The guest files, downloading since before the snapshot was checked. */
  guestFiles?: Promise<Map<string, Uint8Array>>;
  /** The build's instance worker, starting since then too. */
  spare?: EarlySpare;
}

/** An instance worker started before its boot's session exists: the
 * session takes it, or else dispose() ends it. */
interface EarlySpare {
  take(): Promise<SpareLike | null>;
  dispose(): void;
}

function earlySpare(starting: Promise<SpareLike | null>): EarlySpare {
  let taken = false;
  starting.catch(() => undefined);
  return {
    take: () => {
      taken = true;
      return starting;
    },
    dispose: () => {
      if (!taken) void starting.then((s) => s?.dispose(), () => undefined);
    },
  };
}

/** A snapshot file checked whole: what it says, QEMU's stream in it (its
 * own buffer, handed to the instance worker, not copied), its RAM placed
 * (format 2) and the build to restore it on. */
export interface CheckedSnapshot {
  info: SnapshotInfo;
  state: Uint8Array;
  ram?: PlacedRam;
  build: ResolvedBuild;
}

/** A snapshot file whose header passed: what it says and the build to
 * restore it on; its payload is read by checkedSnapshot(). */
export interface CheckedHead {
  file: SnapshotFile;
  build: ResolvedBuild;
}

/** Where a snapshot's state lives in QEMU's file system, saving and loading. */
const SNAPSHOT_FILE = '/snapshot.state';
/** Saving writes every used page of guest RAM: up to a minute for 1 GiB here. */
const SNAPSHOT_TIMEOUT_MS = 300_000;

/** The session's VM as a snapshot file; the VM runs on. The host has
 * checked that the session runs (s.running is set). */
export async function saveSession(s: Session): Promise<Blob> {
  if (s.update || s.saving) throw new PlaygroundError('bad-state', 'a live update or another save is in progress');
  s.saving = true;
  try {
    // RAM straight out of the layout when QEMU can cpr-exec; else (no
    // shared Memory, or RAM cpr-exec refuses) a migration with RAM.
    const content = (s.memory && !s.prepared?.layoutProblem ? await capture(s, s.running!) : null) ?? { state: await saveState(s.running!, SNAPSHOT_FILE, SNAPSHOT_TIMEOUT_MS) };
    // A Blob goes to the page by reference.
    return await writeSnapshot({ guest: s.options.guest, build: s.build.name, ramMiB: s.options.ramMiB, argv: s.baseArgv }, content);
  } catch (e) {
    if (e instanceof PlaygroundError) throw e;
    throw new PlaygroundError('snapshot-failed', `the snapshot could not be saved: ${e instanceof Error ? e.message : String(e)}; the VM runs on`);
  } finally {
    s.saving = false;
  }
}

/**
 * A save of format 2: a cpr-exec migration whose exec is CAPTURE_EXEC,
 * which the instance worker answers with guest RAM and the device state
 * and refuses, so that QEMU runs the VM on (stopped meanwhile, as for any
 * save). Null when QEMU refuses the migration (a blocker: RAM cpr-exec
 * cannot keep), before the VM stopped. The migration parameters are put
 * back as they were: the user's typed flow may have set them.
 */
async function capture(s: Session, r: Running): Promise<SnapshotContent | null> {
  const { qmp } = r;
  const before = await qmp.execute<{ mode?: string; 'cpr-exec-command'?: string[] }>('query-migrate-parameters');
  let take!: (c: Capture) => void;
  const captured = new Promise<Capture>((resolve) => (take = resolve));
  s.onCapture = take;
  // 'completed' comes first (the device state is written), then the
  // exec; after the refusal QEMU marks the migration failed and runs
  // the VM again. 'cancelled': it never got to the exec.
  const ended = qmp.waitFor((e) => (e.kind === 'migration' && ['failed', 'cancelled'].includes(e.status) ? e.status : undefined), SNAPSHOT_TIMEOUT_MS, 'the save did not end');
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no capture within ${SNAPSHOT_TIMEOUT_MS} ms`)), SNAPSHOT_TIMEOUT_MS)));
  limit.catch(() => undefined);
  try {
    await qmp.execute('migrate-set-parameters', { mode: 'cpr-exec', 'cpr-exec-command': cprExecCommand(CAPTURE_EXEC, s.baseArgv, SNAPSHOT_FILE) });
    try {
      await qmp.execute('migrate', { uri: `file:${SNAPSHOT_FILE}` });
    } catch (e) {
      if (e instanceof QmpError) return null;
      throw e;
    }
    const c = await Promise.race([captured, s.failure, limit, ended.promise.then((st): never => {
      throw new Error(`the migration ended (${st}) without a capture`);
    })]);
    if ('error' in c) throw new Error(c.error);
    await Promise.race([ended.promise, s.failure, limit]);
    return c;
  } finally {
    clearTimeout(timer);
    s.onCapture = null;
    ended.cancel();
    await qmp
      .execute('migrate-set-parameters', { mode: before.mode ?? 'normal', 'cpr-exec-command': before['cpr-exec-command'] ?? [] })
      .catch(() => undefined);
    // The device state stays in QEMU's files otherwise.
    await r.instance.readFile?.(SNAPSHOT_FILE, true).catch(() => null);
  }
}

/**
 * A boot from the guest's booted snapshot: the Restore, once the snapshot
 * is fetched and checked (before the running guest is touched). Meanwhile
 * the build and the guest files download, the build compiles (a restored
 * QEMU opens its -kernel and -initrd too) and its instance worker starts:
 * loading that worker's modules and QEMU's glue in its pthread workers
 * takes a while of its own. dispose() ends that worker unless the boot
 * took it.
 */
export function bootedRestore(
  o: ResolvedBootOptions,
  store: BuildStore,
  backend: QemuBackend,
  onDownload: (loaded: number, total: number, label: string) => void,
): { restore: Promise<Restore>; dispose(): void } {
  const spare = earlySpare(
    store.builds().then((r) => {
      const build = r.resolve(o.guest, o.build);
      void store.prepare(build).catch(() => undefined);
      return backend.prewarm?.(store.url(build.jsPath)) ?? null;
    }),
  );
  const plan = backend.plan(o.guest, o.ramMiB, true);
  const guestFiles = store.fetchAll(Object.keys(plan.files), onDownload);
  guestFiles.catch(() => undefined);
  const restore = bootedSnapshot(o, plan.bootedSnapshot, store, backend, onDownload).then((r) => ({ ...r, guestFiles, spare }));
  return { restore, dispose: () => spare.dispose() };
}

/** The guest's booted snapshot (`path`), shipped with the builds, checked
 * whole, its RAM placed into a fresh Memory while the build downloads and
 * compiles. */
async function bootedSnapshot(
  o: ResolvedBootOptions,
  path: string,
  store: BuildStore,
  backend: QemuBackend,
  onDownload: (loaded: number, total: number, label: string) => void,
): Promise<Restore> {
  let file: Uint8Array;
  try {
    const fetched = await store.fetchAll([path], onDownload);
    file = fetched.get(path)!;
  } catch (e) {
    throw new PlaygroundError('load-failed', `the ${o.guest} guest's booted snapshot did not load (${e instanceof Error ? e.message : String(e)}); boot with from: "scratch", or run \`npm run artifacts\``);
  }
  const f = await snapshotFile(file);
  const { info } = f;
  if (info.guest !== o.guest || info.ramMiB !== o.ramMiB) {
    throw new PlaygroundError('bad-snapshot', `${path} is of the ${info.guest} guest with ${info.ramMiB} MiB, not ${o.guest} with ${o.ramMiB} MiB: rebuild it (npm run build:wasm)`);
  }
  const create = backend.createMemory;
  const { state, ram } = await readPayload(f, create && (() => create.call(backend)));
  return { argv: info.argv, state, ram, booted: true };
}

/** A checked file's payload, read and checked whole; its RAM image, if it
 * has one, placed into a fresh Memory of `createMemory` as it is read. */
async function readPayload(f: SnapshotFile, createMemory: (() => WebAssembly.Memory) | undefined): Promise<{ state: Uint8Array; ram?: PlacedRam }> {
  if (!f.ram) return { state: await f.read() };
  if (!createMemory) throw new PlaygroundError('bad-snapshot', 'this page cannot restore the snapshot\'s RAM image: it has no shared Memory; nothing was changed');
  const memory = createMemory();
  const state = await f.read(new ImageStream(f.ram, memory));
  return { state, ram: { memory, open: f.ram.open, env: f.ram.env } };
}

/**
 * A snapshot file's header checked, and the build to restore it on: a few
 * KiB read, so the build can download and compile while the rest is read.
 * `store` is asked for only once the file reads as a snapshot (it throws
 * before init()); `sharedMemory`: the backend can give guest RAM the
 * live-update layout, which a RAM image needs.
 */
export async function checkedHead(
  file: Blob | Uint8Array,
  options: RestoreOptions,
  store: () => BuildStore,
  sharedMemory: boolean,
): Promise<CheckedHead> {
  if (!(file instanceof Uint8Array) && !(file instanceof Blob)) throw new PlaygroundError('bad-options', 'a snapshot is given as bytes (Uint8Array) or a Blob');
  const f = await snapshotFile(file);
  const { info } = f;
  const registry = await store().builds();
  let build: ResolvedBuild;
  try {
    build = registry.resolve(info.guest, options.build ?? info.build);
  } catch (e) {
    throw new PlaygroundError('bad-snapshot', `this page cannot restore the snapshot: ${e instanceof Error ? e.message : String(e)} (it was saved by ${info.build}); nothing was changed`);
  }
  const ram = ramError(info.ramMiB);
  if (ram) throw new PlaygroundError('bad-snapshot', `this page cannot give the snapshot's RAM: ${ram}; nothing was changed`);
  if (f.ram) {
    const layout = sharedMemory ? buildLayoutProblem(build.name, await store().glueSource(build)) : 'this page has no shared Memory';
    if (layout) throw new PlaygroundError('bad-snapshot', `this page cannot restore the snapshot's RAM image: ${layout}; nothing was changed`);
  }
  return { file: f, build };
}

/**
 * The rest of a file whose header passed, read and checked whole. With
 * `createMemory` (a restore), its RAM image goes into a fresh Memory as it
 * is read, which the restore's QEMU gets only if every byte passed;
 * without (a check alone), the image is only checked.
 */
export async function checkedSnapshot(head: CheckedHead, createMemory?: () => WebAssembly.Memory): Promise<CheckedSnapshot> {
  const { file, build } = head;
  if (!createMemory) return { info: file.info, state: await file.read(), build };
  return { info: file.info, ...(await readPayload(file, createMemory)), build };
}

/**
 * How QEMU starts for `restore`, or for a boot when it is null. A restore
 * loads the saved state (the incoming side reports the end of the load
 * only with the events capability) instead of booting; the state (up to
 * the guest's RAM) moves to the instance worker, not copied, as it is the
 * checked state's own buffer; RAM, already placed in its Memory, is taken
 * over as after a cpr-exec (its fds, QEMU's environment).
 */
export function restoreStart(
  restore: Restore | null,
  argv: string[],
  files: Record<string, Uint8Array>,
): Pick<StartRequest, 'argv' | 'files' | 'transfer' | 'env' | 'adopt'> {
  const launchArgv = restore ? [...argv, '-global', 'migration.x-events=on', '-incoming', `file:${SNAPSHOT_FILE}`] : argv;
  const launchFiles = restore ? { ...files, [SNAPSHOT_FILE]: restore.state } : files;
  const transfer = restore && ownsBuffer(restore.state) ? [restore.state.buffer] : [];
  const cpr = restore?.ram ? { env: restore.ram.env, adopt: restore.ram.open } : {};
  return { argv: launchArgv, files: launchFiles, transfer, ...cpr };
}

/** Whether `bytes` is the whole of an ArrayBuffer, so transferring it
 * moves nothing else. */
function ownsBuffer(bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}
