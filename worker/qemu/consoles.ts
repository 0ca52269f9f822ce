// How QEMU's serial port, its two monitors and the guest's file channel
// reach the host: four character devices in QEMU's file system (see
// chardev.ts). Pure data; any thread.
//
// - serial: the guest's console, the page's first tab;
// - monitor: HMP, the page's monitor tab, the user's alone;
// - qmp: QMP, the host's own control channel (worker/qmp.ts): structured
//   replies and events, never shown, never typed into;
// - files: a virtio serial port that the guest's file agent serves
//   (worker/files.ts), never shown.

export type ConsoleName = 'serial' | 'monitor' | 'qmp' | 'files';
export const CONSOLES: readonly ConsoleName[] = ['serial', 'monitor', 'qmp', 'files'];
/** The consoles whose input outlives an instance (a live update hands it to
 * the next one). Not QMP: each instance has its own client, and a command
 * meant for the old QEMU must not reach the new one. */
export const CARRIED_CONSOLES: readonly ConsoleName[] = ['serial', 'monitor', 'files'];

/** Where each console's character device lives, and its major number. */
export const CONSOLE_DEVICES: Record<ConsoleName, { path: string; major: number }> = {
  serial: { path: '/dev/cpr-serial', major: 64 },
  monitor: { path: '/dev/cpr-monitor', major: 65 },
  qmp: { path: '/dev/cpr-qmp', major: 66 },
  files: { path: '/dev/cpr-files', major: 67 },
};

/** The port's name, as the guest's agent looks for it (wasm/guest/cpr-files). */
export const FILES_PORT = 'org.cpr-playground.files';

/** The virtio serial device that carries the file channel: on the bus the
 * machine has (Arm virt: virtio-mmio; pc: PCI). */
export type VirtioSerial = 'virtio-serial-device' | 'virtio-serial-pci';

/** The arguments of the file channel: a virtio serial port on the file
 * channel's character device.
 *
 * Two ports, not the device's default 31, and no ioeventfd: each queue
 * with an ioeventfd is a pipe here (Emscripten has no eventfd), made,
 * set non-blocking and read through calls that QEMU's threads proxy to
 * the runtime's thread. 64 queues made ~1,000 such calls in the start of
 * every new QEMU, most of them in a live update's state load (70-120 ms;
 * 25-30 ms with two ports). Without ioeventfd a guest's kick is served
 * in the vCPU thread at once, not through a pipe and the main loop. On
 * Arm virt the transports are the board's: set for all of them. */
export function filesArgv(device: VirtioSerial): string[] {
  return [
    '-chardev', `pipe,id=files0,path=${CONSOLE_DEVICES.files.path}`,
    ...(device === 'virtio-serial-pci'
      ? ['-device', `${device},max_ports=2,ioeventfd=off`]
      : ['-global', 'virtio-mmio.ioeventfd=off', '-device', `${device},max_ports=2`]),
    '-device', `virtserialport,chardev=files0,name=${FILES_PORT}`,
  ];
}

/** Whether a QEMU command line has the file channel: a VM from a snapshot
 * or kept VM saved before it existed has not. */
export function hasFilesPort(argv: readonly string[]): boolean {
  return argv.some((a) => a.startsWith('virtserialport,') && a.includes(`name=${FILES_PORT}`));
}

/** The chardev arguments that connect the three consoles to the host. */
export function consoleArgv(): string[] {
  return [
    '-chardev', `pipe,id=serial0,path=${CONSOLE_DEVICES.serial.path}`,
    '-serial', 'chardev:serial0',
    '-chardev', `pipe,id=monitor0,path=${CONSOLE_DEVICES.monitor.path}`,
    '-mon', 'chardev=monitor0,mode=readline',
    '-chardev', `pipe,id=qmp0,path=${CONSOLE_DEVICES.qmp.path}`,
    '-mon', 'chardev=qmp0,mode=control',
  ];
}

/** QEMU arguments with the host's QMP console added when they lack it: a
 * typed cpr-exec-command copied from a command line without it would
 * start a QEMU the host cannot see run the VM. */
export function withQmpConsole(argv: readonly string[]): string[] {
  const qmp = `pipe,id=qmp0,path=${CONSOLE_DEVICES.qmp.path}`;
  if (argv.some((a, i) => a === qmp && argv[i - 1] === '-chardev')) return [...argv];
  return [...argv, '-chardev', qmp, '-mon', 'chardev=qmp0,mode=control'];
}
