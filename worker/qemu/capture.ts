// A snapshot's save as QEMU's exec sees it (issue 13): a cpr-exec whose
// cpr-exec-command names CAPTURE_EXEC is answered with guest RAM and the
// device state, and refused, so that QEMU runs the VM on. Used where the
// exec arrives: the instance worker, and the build's snapshot step in Node.
import { incomingFiles, type ExecRequest } from './instance';
import { captureRam, type RamImage } from './ram-image';

/** argv[0] of a cpr-exec-command that saves rather than replaces. */
export const CAPTURE_EXEC = 'cpr-playground-capture';

/** What a capture exec gave: the snapshot's parts, or why there are none. */
export type Capture = { image: RamImage; state: Uint8Array } | { error: string };

/** Emscripten's ECANCELED (not Linux's): the answer to a capture exec. */
export const ECANCELED = 11;

/** QEMU's migration stream starts with "QEVM". */
export function isMigrationStream(bytes: Uint8Array | undefined): bytes is Uint8Array {
  return !!bytes && bytes.length >= 4 && bytes[0] === 0x51 && bytes[1] === 0x45 && bytes[2] === 0x56 && bytes[3] === 0x4d;
}

/** Guest RAM out of `memory` and the device state out of the request, while
 * QEMU waits in its exec with the VM stopped. */
export function captureExec(memory: WebAssembly.Memory | undefined, request: ExecRequest): Capture {
  const path = incomingFiles(request.argv)[0];
  const state = path === undefined ? undefined : request.files[path];
  if (!memory) return { error: 'QEMU does not run on a shared Memory' };
  if (!isMigrationStream(state)) return { error: `the device state ${path ?? '(no -incoming file:PATH)'} is missing or not a QEMU migration stream` };
  return { image: captureRam(memory, request.open, request.env), state };
}
