// Runs in Node: what must survive a live update, planted in the guest and
// checked after it, for the live-update tests in any browser
// (live-update.e2e.ts in Chromium, firefox.e2e.ts). Every check goes
// through the guest's own shell.
import assert from 'node:assert/strict';
import { guestShell as shell, type PageLike } from './harness';

export interface GuestFacts {
  pid: number;
  count: number;
  sha: string;
  uptime: number;
}

/** Starts what must survive: a counter process, random bytes in tmpfs. */
export async function plant(page: PageLike): Promise<GuestFacts> {
  const pidLine = await shell(page, 'counter /tmp/counter >/dev/null 2>&1 & echo PID=$!', /^PID=\d+$/m);
  await shell(page, 'head -c 1048576 /dev/urandom > /tmp/random; echo planted', /^planted$/m);
  // A few numbers in the counter file before anything else happens.
  await new Promise((r) => setTimeout(r, 2000));
  return { pid: Number(pidLine.slice(4)), ...(await facts(page, Number(pidLine.slice(4)))) };
}

async function facts(page: PageLike, pid: number): Promise<Omit<GuestFacts, 'pid'>> {
  const alive = await shell(page, `kill -0 ${pid} && echo ALIVE-${pid} || echo DEAD-${pid}`, new RegExp(`^(ALIVE|DEAD)-${pid}$`, 'm'));
  assert.equal(alive, `ALIVE-${pid}`, `the counter process ${pid} must still run`);
  const count = await counterNow(page);
  const sha = (await shell(page, 'sha256sum /tmp/random', /^[0-9a-f]{64}(?=\s)/m)).trim();
  const uptime = Number((await shell(page, 'echo UP=$(cut -d" " -f1 /proc/uptime)', /^UP=[\d.]+$/m)).slice(3));
  return { count, sha, uptime };
}

/** The counter's last number (the counter that plant() or the tour started). */
export async function counterNow(page: PageLike): Promise<number> {
  return Number((await shell(page, 'echo COUNT=$(tail -n 1 /tmp/counter)', /^COUNT=\d+$/m)).slice(6));
}

/** The counter counts on (two readings 2 s apart), 1..n without a gap. */
export async function counterCountsOn(page: PageLike): Promise<void> {
  const first = await counterNow(page);
  await new Promise((r) => setTimeout(r, 2000));
  const then = await counterNow(page);
  assert.ok(then > first, `the counter counts on (${first} → ${then})`);
  await counterContinuous(page);
}

/** The counter file has 1..n without gap or repeat. */
export async function counterContinuous(page: PageLike): Promise<void> {
  const out = await shell(page, 'awk \'$1!=NR{bad=NR} END{print "GAPS=" (bad?bad:0) " N=" NR}\' /tmp/counter', /^GAPS=\d+ N=\d+$/m);
  assert.match(out, /^GAPS=0 /, `the counter must count on without a gap or a restart: ${out}`);
}

/** The guest after an update: the same counter process counting on
 * without a gap, the same tmpfs bytes, its clock gone on, and no boot
 * message on the serial console since `serialFrom`. */
export async function assertContinuity(page: PageLike, before: GuestFacts, serialFrom: number): Promise<GuestFacts> {
  const now = { pid: before.pid, ...(await facts(page, before.pid)) };
  assert.ok(now.count > before.count, `the counter went on (${before.count} → ${now.count})`);
  assert.equal(now.sha, before.sha, 'the random bytes in tmpfs are unchanged');
  assert.ok(now.uptime > before.uptime, `uptime continued (${before.uptime} → ${now.uptime})`);
  await counterContinuous(page);
  const text = await page.evaluate((from) => window.playground.serialText(from), serialFrom);
  assert.doesNotMatch(text, /Booting Linux|cpr-playground guest ready|Linux version/, 'the guest did not reboot');
  return now;
}
