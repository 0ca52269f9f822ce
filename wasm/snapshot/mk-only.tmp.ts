// The build's booted snapshots (issue 13, "instant start"): each guest
// booted by the real QEMU build in Node, on a shared Memory with the
// playground's own command line, up to its shell prompt, then saved as the
// page saves (worker/snapshot.ts, format 2): a cpr-exec migration of the
// device state whose exec is refused, with guest RAM taken out of the
// memfd regions meanwhile. The page restores it instead of booting: the
// shell is there in seconds.
//
// Usage (wasm/steps/snapshot.sh runs it):
//   node --import tsx wasm/snapshot/make-snapshots.ts QEMU_DIR GUEST_DIR OUT_DIR BUILD
// QEMU_DIR holds qemu-system-*.{js,wasm} of BUILD (e.g. v1); GUEST_DIR the
// guest images (arm/uImage ...); OUT_DIR gets <guest>.cprsnap.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_RAM_MIB } from '../../worker/api';
import { cprExecCommand } from '../../worker/live-update';
import { GUESTS, READY_LINE, guestArgv, type GuestName } from '../../worker/qemu/guests';
import { CAPTURE_EXEC, captureExec, ECANCELED, type Capture } from '../../worker/qemu/capture';
import { launchQemu } from '../../worker/qemu/instance';
import { createSharedMemory } from '../../worker/qemu/memory';
import { QmpClient } from '../../worker/qmp';
import { writeSnapshot } from '../../worker/snapshot';
import { SHELL_PROMPT_LINE } from '../../test/shell-prompt';
import { Transcript } from '../../test/smoke/transcript';

const BOOT_TIMEOUT_MS = 600_000;
const SAVE_TIMEOUT_MS = 120_000;
/** The snapshot's file in QEMU's file system (any path: it is read back). */
const STATE_PATH = '/snapshot.state';
/** busybox ash asks the terminal where the cursor is (ESC[6n) after each
 * prompt and waits for the answer; a terminal at column 3 answers this. A
 * snapshot saved with the question open would eat the user's first key. */
const CURSOR_REPLY = '\x1b[1;3R';

const encoder = new TextEncoder();

async function snapshotOf(guest: GuestName, qemuDir: string, guestDir: string, build: string): Promise<Uint8Array> {
  const spec = GUESTS[guest];
  const launch = guestArgv(guest, DEFAULT_RAM_MIB, { liveUpdate: true });
  const files = Object.fromEntries(
    Object.entries(launch.files).map(([artifact, fsPath]) => [fsPath, readFileSync(join(guestDir, artifact.replace(/^guest\//, '')))]),
  );
  const serial = new Transcript();
  const log: string[] = [];
  const qmp = new QmpClient((b) => instance?.write('qmp', b));
  let instance: Awaited<ReturnType<typeof launchQemu>> | undefined;
  const memory = createSharedMemory();
  let captured: Capture | undefined;
  instance = await launchQemu({
    jsUrl: pathToFileURL(join(qemuDir, `${spec.binary}.js`)).href,
    wasmUrl: pathToFileURL(join(qemuDir, `${spec.binary}.wasm`)).href,
    memory,
    // The save's exec, answered as the page's instance worker answers it.
    onExec: (request) => {
      if (request.argv[0] === CAPTURE_EXEC) captured = captureExec(memory, request);
      return -ECANCELED;
    },
    // A copy: Emscripten's glue puts the program name in front of it.
    argv: [...launch.argv],
    files,
    onConsole: (c, bytes) => (c === 'serial' ? serial.pushBytes(bytes) : c === 'qmp' ? qmp.feed(bytes) : undefined),
    onLog: (line) => log.push(line),
  });
  const qemu = instance;
  const died = qemu.exited.then((e): never => {
    throw new Error(`QEMU exited with status ${e.status}: ${log.slice(-5).join(' | ') || e.message || ''}`);
  });
  try {
    const t0 = Date.now();
    await Promise.race([serial.waitFor(READY_LINE, BOOT_TIMEOUT_MS), died]);
    const prompt = await Promise.race([serial.waitFor(SHELL_PROMPT_LINE, 60_000), died]);
    qemu.write('serial', encoder.encode(CURSOR_REPLY));
    // Let the shell take the answer and go back to reading its input.
    await new Promise((r) => setTimeout(r, 2000));
    // The save ends with QEMU's MIGRATION event, sent with this capability.
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    // 'completed' comes first (the device state is written), then the
    // exec, then 'failed' once QEMU took the refusal and runs the VM.
    const ended = qmp.waitFor((e) => (e.kind === 'migration' && e.status === 'failed' ? true : undefined), SAVE_TIMEOUT_MS, 'the save did not end');
    await qmp.execute('migrate-set-parameters', { mode: 'cpr-exec', 'cpr-exec-command': cprExecCommand(CAPTURE_EXEC, launch.argv, STATE_PATH) });
    await qmp.execute('migrate', { uri: `file:${STATE_PATH}` });
    await Promise.race([ended.promise, died]);
    if (!captured || 'error' in captured) throw new Error(`QEMU saved no snapshot: ${captured?.error ?? 'no capture exec'} (${log.slice(-8).join(' | ')})`);
    const file = new Uint8Array(await (await writeSnapshot({ guest, build: `${spec.binary}@${build}`, ramMiB: DEFAULT_RAM_MIB, argv: launch.argv }, captured)).arrayBuffer());
    console.log(`make-snapshots: ${guest}: shell after ${((Date.now() - t0) / 1000).toFixed(1)} s (prompt at ${prompt}), ` +
      `device state ${(captured.state.length / 1024).toFixed(1)} KiB, RAM image ${(captured.image.data.length / 2 ** 20).toFixed(1)} MiB ` +
      `(${captured.image.regions.map((r) => `${r.name} ${r.pages} pages`).join(', ')}), snapshot ${(file.length / 2 ** 20).toFixed(2)} MiB`);
    return file;
  } finally {
    await qemu.kill();
  }
}

const [qemuDir, guestDir, outDir, build] = process.argv.slice(2);
if (!qemuDir || !guestDir || !outDir || !build) {
  console.error('usage: make-snapshots.ts QEMU_DIR GUEST_DIR OUT_DIR BUILD');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
for (const guest of (process.env.ONLY ? process.env.ONLY.split(",") : Object.keys(GUESTS)) as GuestName[]) {
  writeFileSync(join(outDir, `${guest}.cprsnap`), await snapshotOf(guest, qemuDir, guestDir, build));
}
process.exit(0);
