// How QEMU's serial port and HMP monitor reach the host: two character
// devices in QEMU's file system (see chardev.ts). Pure data; any thread.

/** Paths of the two character devices QEMU's chardevs open. */
export const SERIAL_DEVICE = '/dev/cpr-serial';
export const MONITOR_DEVICE = '/dev/cpr-monitor';

/** The chardev arguments that connect QEMU's serial port and HMP monitor to the host. */
export function consoleArgv(): string[] {
  return [
    '-chardev', `pipe,id=serial0,path=${SERIAL_DEVICE}`,
    '-serial', 'chardev:serial0',
    '-chardev', `pipe,id=monitor0,path=${MONITOR_DEVICE}`,
    '-mon', 'chardev=monitor0,mode=readline',
  ];
}
