// Runs in Node (node:test): the JIT end to end in Debian's Chromium, with
// the real QEMU builds and the real guests (issue 12). The same battery
// of guest work (hashes of fixed data with several tools, 64-bit shell
// arithmetic that a 32-bit host splits in halves, awk's floating point,
// sorting, a script rewritten between runs, a fork/exec storm, and a
// program whose hot loop ends in a fault that must raise the guest's
// signal: trap-program.ts) prints the same bytes under `jit` and under
// `interpreter`, on every guest, and again on the JIT after a live update. `info jit` says which engine
// runs. Nothing here asserts on timing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Accel, GuestName } from '../../worker/api';
import { BOOT_TIMEOUT_MS, e2eLog, liveUpdateUnavailable, openPage, sharedBrowser, waitForState, within } from './harness';
import { RUN_TRAP, TRAP_STATUS, writeTrapCommand, type TrapGuest } from './trap-program';

const shared = sharedBrowser();
const log = e2eLog;

// The markers are typed split ("BATTERY""_END") so that the shell's echo
// of the command line never matches them.
const BATTERY = [
  'cd /tmp',
  'echo BATTERY""_BEGIN',
  'i=0; while [ $i -lt 1500 ]; do echo "line $i $((i*i%97)) $((i<<20))"; i=$((i+1)); done > d',
  'sha256sum d; md5sum d; wc d',
  'sort -r -k3 -n d | sha1sum',
  "awk '{ s += $3; x = x * 31 + $2 } END { print s, x }' d",
  'echo $((1<<31)) $((1<<62)) $((-7/2)) $((-7%3)) $((0xffffffff*0xffffffff)) $((-(1<<63)/3)) $((0x123456789 >> 7))',
  // awk's math library is not built in: only + - * / and int().
  "awk 'BEGIN { x = 7; for (i = 0; i < 50; i++) { x = x * 75 + 74; x -= int(x / 65537) * 65537 } printf \"%d %.6f %.3e\\n\", x, 1 / 3, 10 / 7 * 1e10 }'",
  "printf 'echo script v1\\n' > s.sh; sh s.sh; printf 'echo script v2 $((6*7))\\n' > s.sh; sh s.sh",
  'i=0; while [ $i -lt 40 ]; do sh -c "echo child \\$((\\$\\$ > 0))"; i=$((i+1)); done | sort | uniq -c',
  RUN_TRAP,
  'echo BATTERY""_END',
].join('; ');

/** Writes the trap program, runs the battery in the guest's shell and
 * returns what the battery printed. */
async function runBattery(page: Page, guest: TrapGuest): Promise<string> {
  return within(600_000, 'the guest battery', page.evaluate(async ({ write, command }) => {
    const pg = window.playground;
    const written = pg.serialOffset();
    await pg.sendSerial(`${write}; echo TRAP""_WRITTEN\n`);
    await pg.waitForSerial(/^TRAP_WRITTEN\r?\n/m, 60_000, { from: written });
    const from = pg.serialOffset();
    await pg.sendSerial(`${command}\n`);
    await pg.waitForSerial(/^BATTERY_END\r?\n/m, 540_000, { from });
    const text = pg.serialText(from).replace(/\r/g, '');
    const begin = text.indexOf('BATTERY_BEGIN\n') + 'BATTERY_BEGIN\n'.length;
    // The kernel may log to the console at any moment (e.g. "random: crng
    // init done"): its lines are not the battery's output.
    return text.slice(begin, text.lastIndexOf('BATTERY_END')).replace(/^\[\s*\d+\.\d+\] .*\n/gm, '');
  }, { write: writeTrapCommand(guest), command: BATTERY }));
}

async function start(guest: GuestName, accel: Accel): Promise<Page> {
  const page = await openPage(shared.browser, shared.server.url, log);
  await page.evaluate(({ guest, accel }) => window.playground.boot({ guest, ramMiB: 128, build: 'v1', from: 'snapshot', accel }), { guest, accel });
  await waitForState(page, 'running', BOOT_TIMEOUT_MS);
  return page;
}

describe('the JIT', { timeout: 60 * 60_000, skip: liveUpdateUnavailable() }, () => {
  for (const guest of ['arm', 'i386'] as const) {
    it(`${guest}: the battery prints the same under jit and interpreter, and after a live update`, { timeout: 40 * 60_000 }, async () => {
      const interpreted = await start(guest, 'interpreter');
      assert.equal(await interpreted.evaluate(() => window.playground.status().accel), 'interpreter');
      const expected = await runBattery(interpreted, guest);
      assert.match(await interpreted.evaluate(() => window.playground.monitor('info jit')), /TCI JIT: off/);
      await interpreted.close();
      // The battery did real work: every tool answered.
      assert.match(expected, /^[0-9a-f]{64} {2}d$/m);
      assert.match(expected, /^script v2 42$/m);
      assert.match(expected, /^\s+40 child 1$/m);
      assert.match(expected, new RegExp(`^trap rc=${TRAP_STATUS[guest]}$`, 'm'), 'the fault raises the guest\'s signal');
      log(`${guest}: interpreter battery: ${expected.length} bytes`);

      const page = await start(guest, 'jit');
      assert.equal(await page.evaluate(() => window.playground.status().accel), 'jit');
      assert.equal(await runBattery(page, guest), expected);
      const info = await page.evaluate(() => window.playground.monitor('info jit'));
      log(`${guest}: ${info.split('\n').filter((l) => /TCI JIT|blocks|modules|compile/.test(l)).join(' | ')}`);
      assert.match(info, /TCI JIT: on/);
      assert.ok(Number(/blocks compiled\s+(\d+)/.exec(info)?.[1] ?? 0) > 0, `no block compiled: ${info}`);

      const r = await page.evaluate(() => window.playground.liveUpdate('v2'));
      assert.equal(r.to, `qemu-system-${guest}@v2`);
      assert.equal(await page.evaluate(() => window.playground.status().accel), 'jit');
      // The new build starts with no compiled block and compiles its own.
      assert.equal(await runBattery(page, guest), expected);
      assert.match(await page.evaluate(() => window.playground.monitor('info jit')), /TCI JIT: on/);
      await page.close();
    });
  }
});
