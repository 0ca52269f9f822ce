// Runs in Node: our i386 guest under native qemu-system-i386 (QEMU 10.2.2
// with our patch series, built on this machine): the TCG build that
// wasm/native-check.sh makes and the TCI build of bench/native-qemu.sh.
// Same kernel, initramfs, firmware and kernel command line as the browser.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { GUESTS } from '../worker/qemu/guests';
import { CPU_WORKLOADS, guestRealSeconds, type CpuWorkload } from './page-shell';
import { ARTIFACTS } from '../test/artifacts';

export interface NativeBuild {
  name: 'native-tcg' | 'native-tci';
  binary: string;
}

const NATIVE_WORK = process.env.CPR_NATIVE_WORK ?? '/work/nativecheck';

export function nativeBuilds(): { builds: NativeBuild[]; missing: string[] } {
  const candidates: NativeBuild[] = [
    { name: 'native-tcg', binary: process.env.CPR_BENCH_QEMU_TCG ?? `${NATIVE_WORK}/patched/build/qemu-system-i386` },
    { name: 'native-tci', binary: process.env.CPR_BENCH_QEMU_TCI ?? `${process.env.CPR_BENCH_NATIVE ?? `${NATIVE_WORK}/tci`}/qemu-system-i386` },
  ];
  const builds = candidates.filter((b) => existsSync(b.binary));
  const missing = candidates
    .filter((b) => !existsSync(b.binary))
    .map((b) => `${b.name}: ${b.binary} is missing (${b.name === 'native-tcg' ? 'sudo bash wasm/native-check.sh' : 'bash bench/native-qemu.sh'})`);
  return { builds, missing };
}

export interface NativeRun {
  promptMs: number;
  /** Per workload, the host wall time and the guest's own `time` of each run. */
  cpu: Record<CpuWorkload, { wallMs: number[]; guestS: (number | null)[] }>;
}

/** Boots the guest once, then runs each CPU workload `runs` times. */
export async function nativeRun(build: NativeBuild, runs: number, ramMiB = 128): Promise<NativeRun> {
  const out = `${ARTIFACTS}/guest`;
  const spec = GUESTS.i386;
  const args = [
    '-M', 'pc', '-accel', 'tcg', '-L', `${out}/firmware`,
    '-kernel', `${out}/i386/vmlinux`, '-initrd', `${out}/i386/initrd.cpio`,
    '-m', String(ramMiB), '-nodefaults', '-nic', 'none', '-display', 'none',
    '-serial', 'stdio', '-monitor', 'none', '-append', spec.kernelCmdline,
  ];
  const t0 = Date.now();
  const qemu = spawn('nice', ['-n', '0', build.binary, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  let err = '';
  const waiters = new Set<() => void>();
  qemu.stdout.on('data', (b: Buffer) => {
    text += b.toString('latin1').replace(/\r/g, '');
    for (const w of [...waiters]) w();
  });
  qemu.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<never>((_, reject) => qemu.on('exit', (code) => reject(new Error(`${build.binary} exited (${code}): ${err.trim()}`))));
  const waitFor = (re: RegExp, from: number, ms: number): Promise<string> =>
    Promise.race([
      exited,
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${build.name}: no ${re} within ${ms} ms; serial:\n${text.slice(-2000)}`)), ms);
        const check = (): void => {
          const m = re.exec(text.slice(from));
          if (!m) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(m[0]);
        };
        waiters.add(check);
        check();
      }),
    ]);
  try {
    await waitFor(/guest:~# /, 0, 300_000);
    const promptMs = Date.now() - t0;
    const cpu = {} as NativeRun['cpu'];
    let n = 0;
    for (const [workload, cmd] of Object.entries(CPU_WORKLOADS) as [CpuWorkload, string][]) {
      const wallMs: number[] = [];
      const guestS: (number | null)[] = [];
      for (let i = 0; i < runs; i++, n++) {
        const from = text.length;
        const t = Date.now();
        qemu.stdin.write(`${cmd}; echo __NATIVE_${n}_$?\n`);
        await waitFor(new RegExp(`__NATIVE_${n}_\\d+`), from, 600_000);
        wallMs.push(Date.now() - t);
        guestS.push(guestRealSeconds(text.slice(from)));
      }
      cpu[workload] = { wallMs, guestS };
    }
    return { promptMs, cpu };
  } finally {
    qemu.kill('SIGTERM');
  }
}
