// Experiment (not a test): does a guest run slower after a live update?
// Boots a guest (env GUEST, default i386; env ACCEL, default interpreter),
// times a 1 MiB sha256 in it, then after each of three updates again,
// with the clocksource and the timer interrupt count over 2 s beside it.
//   GUEST=x86_64 node --import tsx test/exp/after-update-speed.exp.ts
import { OurPage } from '../../bench/ours';
import type { Accel, GuestName } from '../../worker/api';
import { launchBrowser, startServer } from '../e2e/harness';

const guest = (process.env.GUEST ?? 'i386') as GuestName;
const accel = (process.env.ACCEL ?? 'interpreter') as Accel;
const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await OurPage.open(browser, server.url, () => undefined);
  await page.boot({ guest, ramMiB: 128, build: 'v1', accel });
  await page.waitForPrompt();
  const look = async (label: string): Promise<void> => {
    const facts = await page.shell('cat /sys/devices/system/clocksource/clocksource0/current_clocksource; grep -E "LOC|timer" /proc/interrupts | head -2; sleep 2; grep -E "LOC|timer" /proc/interrupts | head -2');
    const work = await page.shell('head -c 1048576 /dev/zero | sha256sum');
    console.log(`--- ${label}: 1 MiB sha256 ${Math.round(work.ms)} ms\n${facts.text}`);
  };
  await look('before');
  let build: 'v1' | 'v2' = 'v1';
  for (let i = 1; i <= 3; i++) {
    build = build === 'v1' ? 'v2' : 'v1';
    const r = await page.liveUpdate(build, 'cpr-exec');
    await look(`after update ${i} (pause ${r.pauseMs} ms)`);
  }
} finally {
  await browser.close();
  await server.close();
}
