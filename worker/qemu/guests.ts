// The guests the playground boots and the QEMU command line for each.
// Pure data and functions: usable from the worker, the page and Node tests.

import { consoleArgv, filesArgv, type VirtioSerial } from './consoles';

export type GuestName = 'arm' | 'i386' | 'x86_64' | 'aarch64';

export interface GuestSpec {
  name: GuestName;
  /** QEMU binary (build artifact) that runs this guest. */
  binary: `qemu-system-${GuestName}`;
  title: string;
  /** Artifact paths (relative to the artifact root) and where QEMU sees them. */
  files: Record<string, string>;
  /** Machine arguments, without RAM, consoles and files. */
  machine: string[];
  kernelCmdline: string;
  /** The file channel's device (putFile, getFile). */
  virtioSerial: VirtioSerial;
  /** The guest booted to its shell and saved (wasm/snapshot/), an artifact path. */
  bootedSnapshot: string;
}

/** The guest's init prints this when its shell is ready. */
export const READY_LINE = 'cpr-playground guest ready';
/** Busybox's prompt as set by the guest's profile ends with this. */
export const PROMPT_SUFFIX = '# ';

// Why these options (docs/guest.md has the long form):
// -nodefaults: no VGA, parallel port, floppy or default NIC; the playground
//   wires exactly the devices it shows (one serial port, one monitor).
// -nic none: no network backend is built into the wasm QEMU (no slirp, no
//   tap); a NIC without a backend is dead weight and, as the default NIC,
//   made -M virt exit at start.
// -display none: there is no display backend in the browser build.
// The file channel (filesArgv) is a virtio serial port: one device, no
// block layer in the guest, and its buffers are guest RAM (docs/files.md).
/** What the pc machine loads with a PVH kernel (docs/guest.md): the BIOS,
 * pvh.bin, and kvmvapic.bin, which it always loads. i386 and x86_64. */
const PC_FIRMWARE: Record<string, string> = {
  'guest/firmware/bios-256k.bin': '/firmware/bios-256k.bin',
  'guest/firmware/pvh.bin': '/firmware/pvh.bin',
  'guest/firmware/kvmvapic.bin': '/firmware/kvmvapic.bin',
};

export const GUESTS: Record<GuestName, GuestSpec> = {
  arm: {
    name: 'arm',
    binary: 'qemu-system-arm',
    title: 'Linux on Arm (virt, Cortex-A15)',
    // An uncompressed kernel in a uImage wrapper: QEMU loads a raw arm Image
    // at the wrong offset, and a zImage spends ~100 s decompressing itself
    // under TCI (docs/guest.md).
    files: { 'guest/arm/uImage': '/guest/uImage', 'guest/arm/initrd.cpio': '/guest/initrd.cpio' },
    machine: ['-M', 'virt', '-cpu', 'cortex-a15', '-kernel', '/guest/uImage', '-initrd', '/guest/initrd.cpio'],
    kernelCmdline: 'console=ttyAMA0 lpj=100000 panic=-1',
    virtioSerial: 'virtio-serial-device',
    bootedSnapshot: 'snapshots/arm.cprsnap',
  },
  i386: {
    name: 'i386',
    binary: 'qemu-system-i386',
    title: 'Linux on i386 (pc, SeaBIOS)',
    files: {
      // A PVH ELF kernel: QEMU enters it directly (pvh.bin), so nothing is
      // decompressed under TCI, unlike a bzImage.
      'guest/i386/vmlinux': '/guest/vmlinux',
      'guest/i386/initrd.cpio': '/guest/initrd.cpio',
      ...PC_FIRMWARE,
    },
    machine: ['-M', 'pc', '-L', '/firmware', '-kernel', '/guest/vmlinux', '-initrd', '/guest/initrd.cpio'],
    kernelCmdline: 'console=ttyS0 lpj=100000 tsc=reliable no_timer_check mitigations=off panic=-1',
    virtioSerial: 'virtio-serial-pci',
    bootedSnapshot: 'snapshots/i386.cprsnap',
  },
  // The 64-bit guests run on the wasm64 builds (64-bit TCG host registers;
  // wasm/steps/qemu.sh), under the interpreter.
  x86_64: {
    name: 'x86_64',
    binary: 'qemu-system-x86_64',
    title: 'Linux on x86-64 (pc, SeaBIOS)',
    files: {
      // A PVH ELF kernel, as for i386: entered in 32-bit mode by pvh.bin.
      'guest/x86_64/vmlinux': '/guest/vmlinux',
      'guest/x86_64/initrd.cpio': '/guest/initrd.cpio',
      ...PC_FIRMWARE,
    },
    machine: ['-M', 'pc', '-L', '/firmware', '-kernel', '/guest/vmlinux', '-initrd', '/guest/initrd.cpio'],
    // noapictimer: a 64-bit kernel always has a local APIC, and calibrating
    // its timer is a quarter of a native boot (docs/guest.md).
    kernelCmdline: 'console=ttyS0 lpj=100000 tsc=reliable no_timer_check mitigations=off panic=-1 noapictimer',
    virtioSerial: 'virtio-serial-pci',
    bootedSnapshot: 'snapshots/x86_64.cprsnap',
  },
  aarch64: {
    name: 'aarch64',
    binary: 'qemu-system-aarch64',
    title: 'Linux on AArch64 (virt, Cortex-A57)',
    // The uncompressed arm64 Image: its header tells QEMU where to load it,
    // and nothing is decompressed under the interpreter.
    files: { 'guest/aarch64/Image': '/guest/Image', 'guest/aarch64/initrd.cpio': '/guest/initrd.cpio' },
    machine: ['-M', 'virt', '-cpu', 'cortex-a57', '-kernel', '/guest/Image', '-initrd', '/guest/initrd.cpio'],
    kernelCmdline: 'console=ttyAMA0 lpj=100000 mitigations=off panic=-1',
    virtioSerial: 'virtio-serial-device',
    bootedSnapshot: 'snapshots/aarch64.cprsnap',
  },
};

export const RAM_MIN_MIB = 64;
export const RAM_MAX_MIB = 1024;

/** Why a RAM size is not accepted, or undefined when it is. */
export function ramSizeProblem(ramMiB: number): string | undefined {
  if (!Number.isInteger(ramMiB)) return `RAM size must be a whole number of MiB, got ${ramMiB}`;
  if (ramMiB < RAM_MIN_MIB || ramMiB > RAM_MAX_MIB) {
    return `RAM size must be between ${RAM_MIN_MIB} and ${RAM_MAX_MIB} MiB, got ${ramMiB}`;
  }
  if (ramMiB % 16 !== 0) return `RAM size must be a multiple of 16 MiB, got ${ramMiB}`;
  return undefined;
}

export interface GuestLaunch {
  /** QEMU arguments after the program name, consoles included. */
  argv: string[];
  /** Artifact path (relative to the artifact root) → path in QEMU's file system. */
  files: Record<string, string>;
  /** Artifact path of the guest's booted snapshot. */
  bootedSnapshot: string;
}

/**
 * Guest RAM that survives cpr-exec: main RAM in a shared memfd backend and
 * every other RAM block (ROMs, arm virt's two 64 MiB pflash, ACPI tables)
 * shared too (aux-ram-share), so all of it lives in memfd regions at the
 * top of the shared Memory and the next QEMU maps it again.
 */
export function sharedRamArgv(ramMiB: number): string[] {
  return [
    '-machine', 'aux-ram-share=on',
    '-object', `memory-backend-ram,id=ram0,size=${ramMiB}M,share=on`,
    '-machine', 'memory-backend=ram0',
  ];
}

/** The QEMU command line and the files to provide for a guest. With
 * `liveUpdate` (builds with memfd support) guest RAM is shared. */
export function guestArgv(guest: GuestName, ramMiB: number, opts: { liveUpdate?: boolean } = {}): GuestLaunch {
  const spec = GUESTS[guest];
  const problem = ramSizeProblem(ramMiB);
  if (problem) throw new RangeError(problem);
  return {
    argv: [
      ...spec.machine,
      '-m', String(ramMiB),
      ...(opts.liveUpdate ? sharedRamArgv(ramMiB) : []),
      '-nodefaults', '-nic', 'none', '-display', 'none',
      ...consoleArgv(),
      ...filesArgv(spec.virtioSerial),
      '-append', spec.kernelCmdline,
    ],
    files: { ...spec.files },
    bootedSnapshot: spec.bootedSnapshot,
  };
}
