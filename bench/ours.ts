// Runs in Node: drives our playground page (window.playground, docs/api.md)
// for the benchmarks: boot, guest commands, live update, memory.
import type { Browser, JSHandle, Page } from 'playwright-core';
import type { BootOptions, GuestName, LiveUpdateOptions, LiveUpdateResult, LiveUpdateRoute, SnapshotInfo } from '../worker/api';
import { BOOT_TIMEOUT_MS, openPage } from '../test/e2e/harness';
import { shell, type ShellResult } from './page-shell';
import { parseInfoJit } from './info-jit';
import type { JitCounts } from './results';
import type { Mark } from './snapshot-phases';

export type { LiveUpdateRoute };

interface WithLiveUpdate {
  liveUpdate?: (target: string, options?: LiveUpdateOptions) => Promise<LiveUpdateResult>;
}

export interface BootTiming {
  /** From the page load starting to `boot()` being called. */
  pageMs: number;
  /** From `boot()` to the guest's ready line (boot() resolving). */
  bootMs: number;
  /** From the page load starting to the shell prompt. */
  promptMs: number;
}

/** A snapshot file saved by the page's saveSnapshot(), kept in the page
 * (only a handle crosses to Node) for restoreSnapshot(). */
export interface SavedSnapshot {
  file: JSHandle<Blob>;
  /** saveSnapshot()'s time, from the call to the Blob. */
  ms: number;
  bytes: number;
}

export class OurPage {
  private constructor(readonly page: Page) {}

  static async open(browser: Browser, url: string, log: (line: string) => void): Promise<OurPage> {
    return new OurPage(await openPage(browser, url, log));
  }

  /** A new page in an existing context (warm: same HTTP and code caches). */
  static async openIn(page: Page, url: string): Promise<OurPage> {
    await page.goto(url);
    await page.waitForFunction(() => typeof window.playground === 'object');
    return new OurPage(page);
  }

  async boot(options: BootOptions): Promise<number> {
    const t0 = Date.now();
    await this.page.evaluate(async (o) => {
      await window.playground.boot(o);
    }, { bootTimeoutMs: BOOT_TIMEOUT_MS, ...options });
    return Date.now() - t0;
  }

  /** Waits for the prompt after the ready line (the shell is then usable). */
  async waitForPrompt(): Promise<void> {
    await this.page.evaluate(() => window.playground.waitForSerial(/guest:~# /, 60_000));
  }

  shell(command: string, timeoutMs = 600_000): Promise<ShellResult> {
    return shell(this.page, 'playground', command, timeoutMs);
  }

  async builds(): Promise<string[]> {
    return this.page.evaluate(async () => (await window.playground.builds()).map((b) => b.name));
  }

  /** The guest to live-update: the first of `prefer` whose target has a
   * v2 build next to v1; or why there is none. */
  async liveUpdateGuest(prefer: GuestName[]): Promise<{ guest: GuestName } | { missing: string }> {
    const has = await this.page.evaluate(() => typeof (window.playground as unknown as WithLiveUpdate).liveUpdate === 'function');
    if (!has) return { missing: 'liveUpdate not on main yet (window.playground.liveUpdate is missing)' };
    const builds = await this.builds();
    const guest = prefer.find((g) => builds.includes(`qemu-system-${g}@v1`) && builds.includes(`qemu-system-${g}@v2`));
    return guest ? { guest } : { missing: `no guest with both a v1 and a v2 build in the manifest (${builds.join(', ')})` };
  }

  async liveUpdate(target: string, route: LiveUpdateRoute, timeoutMs = 120_000): Promise<LiveUpdateResult> {
    return this.page.evaluate(
      async ({ target, route, timeoutMs }) => {
        const pg = window.playground as unknown as WithLiveUpdate;
        if (!pg.liveUpdate) throw new Error('window.playground.liveUpdate is missing');
        return pg.liveUpdate(target, { route, timeoutMs });
      },
      { target, route, timeoutMs },
    );
  }

  /** The running build's version ('v1', 'v2', ...) once no update is in
   * progress (up to 1 min), or null when the guest does not run. */
  async runningVersion(): Promise<string | null> {
    return this.page.evaluate(async () => {
      for (let i = 0; i < 120 && (window.playground.status().state as string) === 'updating'; i++) await new Promise((r) => setTimeout(r, 500));
      const s = window.playground.status();
      return s.state === 'running' && s.build ? (s.build.split('@')[1] ?? null) : null;
    });
  }

  async saveSnapshot(): Promise<SavedSnapshot> {
    const timed = await this.page.evaluateHandle(async () => {
      const t0 = performance.now();
      const blob = await window.playground.saveSnapshot();
      return { blob, ms: performance.now() - t0 };
    });
    const { ms, bytes } = await timed.evaluate((t) => ({ ms: t.ms, bytes: t.blob.size }));
    const file = await timed.getProperty('blob');
    await timed.dispose();
    return { file, ms, bytes };
  }

  /** What the file holds (checkSnapshot(): checked whole, nothing touched). */
  snapshotInfo(s: SavedSnapshot): Promise<SnapshotInfo> {
    return s.file.evaluate((b) => window.playground.checkSnapshot(b));
  }

  /** restoreSnapshot()'s time, from the call to the restored VM running,
   * and the page's status and progress events on the way (snapshot-phases.ts). */
  restoreSnapshot(s: SavedSnapshot): Promise<{ ms: number; marks: Mark[] }> {
    return s.file.evaluate(async (b) => {
      const pg = window.playground;
      const marks: [string, number][] = [];
      const t0 = performance.now();
      const offStatus = pg.onStatus((st) => marks.push([`status:${st.state}`, performance.now() - t0]));
      const offProgress = pg.onProgress((p) => marks.push([`progress:${p.phase}`, performance.now() - t0]));
      try {
        await pg.restoreSnapshot(b);
        return { ms: performance.now() - t0, marks };
      } finally {
        offStatus();
        offProgress();
      }
    });
  }

  /** The JIT's counts from `info jit`, or null when the interpreter runs alone. */
  async jitCounts(): Promise<JitCounts | null> {
    return parseInfoJit(await this.monitor('info jit'));
  }

  async monitor(command: string): Promise<string> {
    return this.page.evaluate((c) => window.playground.monitor(c, 60_000), command);
  }

  async stop(): Promise<void> {
    await this.page.evaluate(() => window.playground.stop());
  }

  async close(): Promise<void> {
    await this.page.context().close();
  }
}
