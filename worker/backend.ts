// Runs in the QEMU host worker (and its types in Node for unit tests); no DOM.
//
// The backend layer: the one door from the host and the exec path to the
// low-level QEMU module (worker/qemu/: instance workers, the shared
// Memory's layout, memfds, consoles). Nothing above this file imports
// worker/qemu/ (scripts/check-layers.mjs checks it), so that module can
// change without touching the host's logic, and tests plug in a fake
// QemuBackend (test/fakes/fake-qemu.ts).
import type { Accel, GuestName } from './api';
import type { ConsoleName } from './qemu/consoles';
import { guestArgv } from './qemu/guests';
import { prewarmInstance, startInstance, type EndedThreads, type InstanceLaunch, type SpareInstance } from './qemu/instance-client';
import type { InstanceStage } from './qemu/instance-protocol';
import type { HandOver } from './qemu/instance';
import type { OpenMemfd } from './qemu/memfd';
import { createSharedMemory } from './qemu/memory';

export type { ConsoleName } from './qemu/consoles';
export { hasFilesPort, withQmpConsole } from './qemu/consoles';
export type { ConsoleBytes, ExecRequest, HandOver } from './qemu/instance';
export type { EndedThreads } from './qemu/instance-client';
export type { OpenMemfd } from './qemu/memfd';
export { buildLayoutProblem, buildStaticBase, clearBelow, HEAP_LIMIT, RegionTable, SLOT_SPLIT, slotStart, type RegionEntry } from './qemu/memory';
export { concatBytes } from './qemu/bytes';
export { ImageStream, layoutBytes, ramLayoutProblem, type ImageRegion, type RamImage, type RamLayout } from './qemu/ram-image';
export { CAPTURE_EXEC, type Capture } from './qemu/capture';

/**
 * QEMU's environment for an engine. Our QEMU compiles hot blocks to
 * WebAssembly unless QEMU_TCI_JIT is "off" (the tci-jit series); a live
 * update hands QEMU's environment to the next build, so the engine stays.
 */
export function accelEnv(accel: Accel): Record<string, string> {
  return { QEMU_TCI_JIT: accel === 'jit' ? 'on' : 'off' };
}

/** How a QEMU instance ended. heapTop: how far its heap reached, when it can tell. */
export interface InstanceExit {
  status: number;
  message?: string;
  heapTop?: number;
}

/** One running QEMU, as the layers above see it. */
export interface QemuInstanceLike {
  /** Input for one of QEMU's consoles (guest serial, HMP, QMP). */
  write(console: ConsoleName, bytes: Uint8Array): void;
  readonly exited: Promise<InstanceExit>;
  /** `memoryDiscarded`: no QEMU runs on its Memory again: no wait for its
   * last threads (instance-client.ts). */
  kill(options?: { memoryDiscarded?: boolean }): Promise<void>;
  /** The first half of kill(): resolves once no thread of this QEMU
   * writes the Memory; kill() ends the rest. */
  endThreads?(): Promise<EndedThreads>;
  /** A file of QEMU's file system, or null. `remove`: QEMU's file
   * system lets go of it, too. */
  readFile?(path: string, remove?: boolean): Promise<Uint8Array | null>;
  /** The fds open on memfds now (what an exec would hand on). */
  openMemfds?(): Promise<OpenMemfd[]>;
  /** An instance launched `early`: the exec it replaces came. */
  handOver?(exec: HandOver): void;
  /** A QEMU started early will take this one's exec: leave its threads
   * to kill() rather than end them at the exec. */
  successorStarted?(): void;
}

/** Everything needed to start one QEMU instance: the instance worker's
 * launch message with the host's callbacks (worker/qemu/instance-client.ts),
 * plus a pre-started worker to use, if any. */
export interface LaunchRequest extends InstanceLaunch {
  spare?: SpareLike;
}

/** An instance worker started ahead of a live update (opaque above). */
export interface SpareLike {
  readonly jsUrl: string;
  /** Settles once it is staged (at once if it was not asked to stage). */
  readonly ready: Promise<void>;
  dispose(): void;
}

export interface GuestPlan {
  /** QEMU arguments after the program name. */
  argv: string[];
  /** Artifact-relative path → path inside QEMU's file system. */
  files: Record<string, string>;
  /** Artifact path of the guest's booted snapshot (BootOptions.from). */
  bootedSnapshot: string;
}

/** The low-level QEMU module, as the host uses it. */
export interface QemuBackend {
  launch(request: LaunchRequest): Promise<QemuInstanceLike>;
  /** `liveUpdate`: the build can live-update, so guest RAM is shared. */
  plan(guest: GuestName, ramMiB: number, liveUpdate: boolean): GuestPlan;
  /** A fresh shared Memory with the live-update layout. */
  createMemory?(): WebAssembly.Memory;
  /** Compiles a build's wasm (before any pause needs it). */
  compile?(bytes: Uint8Array): Promise<WebAssembly.Module>;
  /** The same from its HTTP response, as it arrives (the browser's code cache). */
  compileStreaming?(response: Response): Promise<WebAssembly.Module>;
  /** Starts an instance worker for a build ahead of a live update; with
   * `stage`, it does all of the start that needs no command line. */
  prewarm?(jsUrl: string, stage?: InstanceStage): SpareLike;
}

function isSpare(spare: SpareLike | undefined): spare is SpareInstance {
  return spare !== undefined && 'worker' in spare;
}

/** The real backend: each QEMU instance in its own instance worker. */
export const qemuBackend: QemuBackend = {
  launch: (request) => startInstance(request, isSpare(request.spare) ? request.spare : undefined),
  prewarm: (jsUrl, stage) => prewarmInstance(jsUrl, stage),
  plan: (guest: GuestName, ramMiB: number, liveUpdate: boolean): GuestPlan => guestArgv(guest, ramMiB, { liveUpdate }),
  createMemory: () => createSharedMemory(),
  compile: (bytes) => WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>),
  compileStreaming: (response) => WebAssembly.compileStreaming(response),
};
