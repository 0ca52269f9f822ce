// Runs in the QEMU host worker; no DOM.
//
// Plugs the low-level QEMU module (worker/qemu/) into the host: the only
// file outside worker/qemu/ that imports it, so its interface can change
// without touching the host's logic. Each QEMU instance runs in its own
// instance worker (worker/qemu/instance.worker.ts).
import type { GuestName } from './api';
import type { GuestPlan, QemuBackend } from './host';
import { guestArgv } from './qemu/guests';
import { prewarmInstance, startInstance, type SpareInstance } from './qemu/instance-client';
import { createSharedMemory } from './qemu/memory';

export const qemuBackend: QemuBackend = {
  // The spare came from prewarm() below: it is a SpareInstance.
  launch: (request) => startInstance(request, request.spare as SpareInstance | undefined),
  prewarm: (jsUrl) => prewarmInstance(jsUrl),
  plan: (guest: GuestName, ramMiB: number, liveUpdate: boolean): GuestPlan => guestArgv(guest, ramMiB, { liveUpdate }),
  createMemory: () => createSharedMemory(),
  compile: (bytes) => WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>),
};
