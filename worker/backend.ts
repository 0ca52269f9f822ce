// Runs in the QEMU host worker; no DOM.
//
// Plugs the low-level QEMU module (worker/qemu/) into the host: the only
// file outside worker/qemu/ that imports it, so its interface can change
// without touching the host's logic.
import type { GuestName } from './api';
import type { GuestPlan, QemuBackend } from './host';
import { launchQemu } from './qemu/instance';
import { guestArgv } from './qemu/guests';

export const qemuBackend: QemuBackend = {
  launch: (request) => launchQemu(request),
  plan: (guest: GuestName, ramMiB: number): GuestPlan => guestArgv(guest, ramMiB),
};
