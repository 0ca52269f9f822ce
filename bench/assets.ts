// Runs in Node: finds the files v86 needs to boot OUR i386 guest.
//
// The kernel: v86 boots a bzImage (not the PVH vmlinux our QEMU uses). The
// guest step (wasm/steps/guest.sh) builds both from one kernel tree and one
// .config in the same make run, so its bzImage IS our kernel; it is not in
// wasm/dist, so it is taken from the guest step's work dir, and its
// kernel.config is compared with the shipped one.
// The BIOS: Debian's SeaBIOS, bios-256k.bin exactly as our i386 guest ships
// it (wasm/out/guest/firmware), and vgabios-stdvga.bin from the same seabios
// .deb (the guest step's download, else apt's cache, else apt-get download).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../test/e2e/harness';
import { ARTIFACTS } from '../test/artifacts';

export interface V86Assets {
  files: Record<'bios-256k.bin' | 'vgabios-stdvga.bin' | 'bzImage' | 'initrd.cpio', string>;
  cmdline: string;
  /** Where each came from, for the report. */
  sources: string[];
}

const OUT = `${ARTIFACTS}/guest`;
const WORK = process.env.CPR_WASM_WORK ?? `${REPO}wasm/.work`;

function findSeabiosDeb(): string | null {
  const dirs = [`${WORK}/root/build/guest/dl`, '/var/cache/apt/archives'];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    const deb = readdirSync(d).filter((f) => /^seabios_.*_all\.deb$/.test(f)).sort().pop();
    if (deb) return join(d, deb);
  }
  return null;
}

function vgaBios(sources: string[]): string {
  if (process.env.CPR_BENCH_VGABIOS) {
    sources.push(`vgabios-stdvga.bin: ${process.env.CPR_BENCH_VGABIOS} (CPR_BENCH_VGABIOS)`);
    return process.env.CPR_BENCH_VGABIOS;
  }
  let deb = findSeabiosDeb();
  if (!deb) {
    const dir = mkdtempSync(join(tmpdir(), 'cpr-bench-seabios-'));
    execFileSync('apt-get', ['download', 'seabios'], { cwd: dir, stdio: 'ignore' });
    deb = join(dir, readdirSync(dir).find((f) => f.endsWith('.deb'))!);
  }
  const into = join(tmpdir(), `cpr-bench-${deb.split('/').pop()!.replace(/\.deb$/, '')}`);
  if (!existsSync(`${into}/usr/share/seabios/vgabios-stdvga.bin`)) {
    mkdirSync(into, { recursive: true });
    execFileSync('dpkg-deb', ['-x', deb, into]);
  }
  sources.push(`vgabios-stdvga.bin: from ${deb.split('/').pop()}`);
  return `${into}/usr/share/seabios/vgabios-stdvga.bin`;
}

/** The assets, or a sentence saying what is missing. */
export function v86Assets(): V86Assets | string {
  const sources: string[] = [];
  const bzImage = process.env.CPR_BENCH_BZIMAGE ?? `${WORK}/guest/i386/bzImage`;
  if (!existsSync(bzImage)) {
    return `no bzImage of our i386 kernel at ${bzImage}: run \`bash wasm/build.sh guest\` (it builds the bzImage next to the vmlinux) or set CPR_BENCH_BZIMAGE`;
  }
  const config = bzImage.replace(/bzImage$/, 'kernel.config');
  const shipped = `${OUT}/i386/kernel.config`;
  if (existsSync(config) && readFileSync(config, 'utf8') !== readFileSync(shipped, 'utf8')) {
    return `${bzImage} was built with another kernel.config than the shipped i386 guest (${shipped}): rebuild with \`bash wasm/build.sh guest\``;
  }
  sources.push(`bzImage: ${bzImage}${existsSync(config) ? ' (its kernel.config equals the shipped one)' : ''}`);
  sources.push(`bios-256k.bin, initrd.cpio, cmdline: ${OUT} (what our i386 guest boots)`);
  return {
    files: {
      'bios-256k.bin': `${OUT}/firmware/bios-256k.bin`,
      'vgabios-stdvga.bin': vgaBios(sources),
      bzImage,
      'initrd.cpio': `${OUT}/i386/initrd.cpio`,
    },
    cmdline: readFileSync(`${OUT}/i386/cmdline`, 'utf8').trim(),
    sources,
  };
}
