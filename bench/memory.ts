// Runs in Node: how much memory the browser uses for a page.
//
// Two views: the page's own performance.measureUserAgentSpecificMemory()
// (needs cross-origin isolation, which both our page and the v86 page
// have; Chromium may take up to ~20 s to answer, at its next GC, and did not answer at all while QEMU ran), and the
// operating system's: the proportional set size (PSS) of every Chromium
// process this Node process started, so shared pages are counted once.
import { readdirSync, readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';

export interface PageMemory {
  /** measureUserAgentSpecificMemory().bytes, or null with the reason. */
  uaBytes: number | null;
  uaError: string | null;
  /** Sum of PSS over the browser's processes, bytes. */
  pssBytes: number;
  processes: number;
}

function children(): Map<number, number[]> {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = byParent.get(ppid) ?? [];
      list.push(Number(name));
      byParent.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  return byParent;
}

/** PSS of every process below this Node process (the browsers it launched). */
export function browserPss(): { bytes: number; processes: number } {
  const byParent = children();
  const todo = [...(byParent.get(process.pid) ?? [])];
  let bytes = 0;
  let processes = 0;
  while (todo.length) {
    const pid = todo.pop()!;
    todo.push(...(byParent.get(pid) ?? []));
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const kb = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
      bytes += kb * 1024;
      processes++;
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return { bytes, processes };
}

export async function pageMemory(page: Page): Promise<PageMemory> {
  const ua = await page.evaluate(async () => {
    const perf = performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }> };
    if (!perf.measureUserAgentSpecificMemory) return { bytes: null, error: 'measureUserAgentSpecificMemory is not available' };
    if (!self.crossOriginIsolated) return { bytes: null, error: 'page not cross-origin isolated' };
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000));
    try {
      const r = await Promise.race([perf.measureUserAgentSpecificMemory(), timeout]);
      return r ? { bytes: r.bytes, error: null } : { bytes: null, error: 'no answer within 30 s' };
    } catch (e) {
      return { bytes: null, error: String(e) };
    }
  });
  const pss = browserPss();
  return { uaBytes: ua.bytes, uaError: ua.error, pssBytes: pss.bytes, processes: pss.processes };
}

/** How long a worker gets to answer a gc() call: a QEMU pthread worker busy
 * in wasm never does (its JS heap is small; it collects on its own). */
const GC_ANSWER_MS = 2000;

/**
 * A full garbage collection in the page and in every worker that answers
 * (the browser runs with --js-flags=--expose-gc). Before a PSS sample that
 * is compared with another: otherwise the samples differ by whatever
 * garbage each isolate happened to hold (seen: 100 MiB up and down over a
 * few live updates). A worker that does not answer is left to itself.
 */
export async function collectGarbage(page: Page): Promise<void> {
  await Promise.all(
    page.workers().map((w) =>
      Promise.race([
        w.evaluate(() => (globalThis as { gc?: () => void }).gc?.()).catch(() => undefined),
        new Promise<void>((resolve) => setTimeout(resolve, GC_ANSWER_MS)),
      ]),
    ),
  );
  await page.evaluate(() => (globalThis as { gc?: () => void }).gc?.());
}
