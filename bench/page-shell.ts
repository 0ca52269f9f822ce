// Runs in Node: types a command into a guest's serial console in a page and
// waits for its end marker. Shared by the drivers of our playground page and
// of the v86 page, which each publish `serialOffset/serialText/sendSerial/
// waitForSerial` with the same meaning (docs/api.md).
import { createHash } from 'node:crypto';
import type { Page } from 'playwright-core';
import { SHELL_PROMPT } from '../test/shell-prompt';

export interface ShellResult {
  /** Serial text from just before the command was typed to its end marker. */
  text: string;
  /** Host wall time from typing the command to seeing its end marker. */
  ms: number;
  /** The command's exit status. */
  status: number;
}

let seq = 0;

/** The name of the page object that has the serial calls: our page's
 * `playground`, or the v86 page's `benchV86`. */
export type SerialHost = 'playground' | 'benchV86';

export async function shell(page: Page, host: SerialHost, command: string, timeoutMs: number): Promise<ShellResult> {
  const n = ++seq;
  // '$?' stays literal in the echoed command line; only the output line
  // has digits after the marker.
  return page.evaluate(
    async ({ host, line, marker, timeoutMs, promptSource }) => {
      const pg = (window as unknown as Record<string, import('./page-shell').SerialApi>)[host]!;
      // Let the prompt settle (SHELL_PROMPT).
      const prompt = new RegExp(promptSource);
      for (let last = -1, i = 0; i < 200; i++) {
        const tail = pg.serialText(Math.max(0, pg.serialOffset() - 64));
        if (prompt.test(tail) && pg.serialOffset() === last) break;
        last = pg.serialOffset();
        await new Promise((r) => setTimeout(r, 150));
      }
      const from = pg.serialOffset();
      const t0 = performance.now();
      await pg.sendSerial(line);
      // The status line whole: "__BENCH_1_1" may be the start of 127.
      const m = await pg.waitForSerial(new RegExp(`${marker}(\\d+)\\r?\\n`), timeoutMs, { from });
      const ms = performance.now() - t0;
      return { text: pg.serialText(from), ms, status: Number(/(\d+)\r?\n$/.exec(m)?.[1] ?? -1) };
    },
    { host, line: `${command}; echo __BENCH_${n}_$?\n`, marker: `__BENCH_${n}_`, timeoutMs, promptSource: SHELL_PROMPT.source },
  );
}

/** The first command of issue 13's target ("page load → the shell
 * answers `echo $((6*7))`") and its answer, a line of its own. */
const FIRST = { line: 'echo $((6*7))\n', answer: '^42\n' };

/** Types the first command as soon as it is called (right after the
 * prompt: a person would not wait for it to settle, as shell() does) and
 * resolves with the page's clock when the answer came: ms since the
 * page's navigation started. */
export async function firstAnswer(page: Page, host: SerialHost, timeoutMs = 60_000): Promise<number> {
  return page.evaluate(
    async ({ host, line, answer, timeoutMs }) => {
      const pg = (window as unknown as Record<string, import('./page-shell').SerialApi>)[host]!;
      const from = pg.serialOffset();
      await pg.sendSerial(line);
      await pg.waitForSerial(new RegExp(answer, 'm'), timeoutMs, { from });
      return performance.now();
    },
    { host, ...FIRST, timeoutMs },
  );
}

/** What both pages publish for the serial console. */
export interface SerialApi {
  serialOffset(): number;
  serialText(from?: number): string;
  sendSerial(text: string): Promise<void>;
  waitForSerial(pattern: string | RegExp, timeoutMs?: number, options?: { from?: number }): Promise<string>;
}

/** busybox ash's `time` prints "real 0m 11.42s"; seconds, or null. */
export function guestRealSeconds(text: string): number | null {
  const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** What a 'most' fill leaves available to the guest, in MiB. */
export const FILL_LEAVE_MIB = 24;

/** The MiB a fill command wrote, from its output. */
export function filledMiB(text: string): number | null {
  const m = /FILL_MIB=(-?\d+)/.exec(text);
  return m ? Number(m[1]) : null;
}

/** The guest CPU workloads (busybox in our initramfs): one hash, and one
 * that is not, so that no single kernel of code decides the result. */
export const CPU_WORKLOADS = {
  /** sha256 of 8 MiB of zeros: the kernel's pipe and sha256sum's loop. */
  sha256: 'time sh -c "head -c 8388608 /dev/zero | sha256sum"',
  /** An awk loop of integer arithmetic: busybox awk's interpreter. */
  awk: "time awk 'BEGIN { s = 0; for (i = 0; i < 30000; i++) s = (s * 31 + i) % 1000003; print \"AWK=\" s }'",
} as const;
export type CpuWorkload = keyof typeof CPU_WORKLOADS;

/** What the awk workload prints: a guest that computes it wrongly is not fast. */
export const AWK_EXPECTED = ((): string => {
  let s = 0;
  for (let i = 0; i < 30000; i++) s = (s * 31 + i) % 1000003;
  return `AWK=${s}`;
})();

/** Whether a run's output has the workload's right answer. */
export function workloadAnswerOk(workload: CpuWorkload, text: string): boolean {
  return text.includes(workload === 'awk' ? AWK_EXPECTED : SHA256_8MIB_ZEROS);
}

/** sha256 of 8 MiB of zero bytes. */
const SHA256_8MIB_ZEROS = createHash('sha256').update(Buffer.alloc(8 * 1024 * 1024)).digest('hex');

/** The shell commands both guests run, so the VMs do the same work. */
export const GUEST_CMDS = {
  /** The first CPU workload (the one the older results measured). */
  cpu: CPU_WORKLOADS.sha256,
  /** A small file of random bytes whose checksum must survive every update. */
  makeCanary: 'head -c 65536 /dev/urandom > /tmp/canary && sha256sum /tmp/canary',
  checkCanary: 'sha256sum /tmp/canary',
  /** Fill guest RAM with non-zero bytes (a tmpfs file): QEMU's migration and
   * v86's save_state both skip zero pages, so empty RAM would flatter them.
   * `mib` MiB, or with 'most' all but FILL_LEAVE_MIB of what the guest has
   * available. /tmp is remounted without tmpfs's 50% size limit. 64 KiB of
   * random bytes, then doubled in place by dd, then the rest copied from
   * the start: the kernel copies big blocks at ~3.7 MiB/s under TCI in
   * wasm, while anything that touches each byte in user space (`yes | head`,
   * busybox `wc -c`) is 10-100 times slower. Prints FILL_MIB=<n>. */
  fill: (mib: number | 'most') =>
    'mount -o remount,size=100% /tmp && ' +
    (mib === 'most' ? `n=$(( $(awk '/MemAvailable/{print $2}' /proc/meminfo) / 1024 - ${FILL_LEAVE_MIB} ))` : `n=${mib}`) +
    ' && echo FILL_MIB=$n && [ $n -gt 0 ] && head -c 65536 /dev/urandom > /tmp/fill && s=1 && ' +
    'while [ $((s*2)) -le $((n*16)) ]; do dd if=/tmp/fill of=/tmp/fill bs=65536 count=$s seek=$s conv=notrunc 2>/dev/null || break; s=$((s*2)); done; ' +
    'r=$((n*16-s)); { [ $r -eq 0 ] || dd if=/tmp/fill of=/tmp/fill bs=65536 count=$r seek=$s conv=notrunc 2>/dev/null; } && ' +
    '[ $(stat -c %s /tmp/fill) -eq $((n*1048576)) ]',
} as const;

export function sha256Of(text: string): string | null {
  return /\b([0-9a-f]{64})\s+\/tmp\/canary/.exec(text)?.[1] ?? null;
}

/** The canary's sha256 (`check` prints it) is still `sum`. */
export async function canaryOk(sum: string | null, check: () => Promise<string>): Promise<boolean> {
  return sum !== null && sha256Of(await check()) === sum;
}
