// Runs in the browser: the benchmark's v86 page (bench/v86.ts serves it,
// transpiled, next to libv86.mjs, v86.wasm and the guest images). Publishes
// `window.benchV86` with the same serial calls as window.playground, so the
// same shell helper drives both.
import type { V86 as V86Type, V86Options } from 'v86';
import type { SerialApi } from './page-shell';

export interface V86BootOptions {
  memoryMiB: number;
  cmdline: string;
}
export interface BenchV86 extends SerialApi {
  /** Boots our i386 guest; resolves at the shell prompt. Times from the
   * page's navigation start and from the emulator's construction. */
  boot(o: V86BootOptions): Promise<{ constructMs: number; readyMs: number; promptMs: number; sinceNavigationMs: number }>;
  /** Starts from a state v86 saved (./state.bin, given as initial_state):
   * v86 restores it while it starts; then an Enter asks the restored shell
   * for a fresh prompt, as our page's Start does. Resolves at that prompt;
   * `fetchMs` is the part spent fetching the files. */
  restore(o: { memoryMiB: number }): Promise<{ fetchMs: number; constructMs: number; promptMs: number; sinceNavigationMs: number }>;
  /** save_state() then restore_state() of the running guest. */
  saveRestore(): Promise<{ saveMs: number; restoreMs: number; bytes: number }>;
  /** save_state() of the running guest, kept in the page for the two calls after it. */
  saveState(): Promise<{ saveMs: number; bytes: number }>;
  /** The kept state's size gzip'd by the browser (CompressionStream, as our
   * saveSnapshot() compresses), since v86 saves it uncompressed. */
  savedGzipBytes(): Promise<number>;
  /** The kept state as base64, to carry it out of the page. */
  savedBase64(): Promise<string>;
  destroy(): Promise<void>;
}
declare global {
  interface Window {
    benchV86: BenchV86;
  }
}

const libUrl = './libv86.mjs';
const { V86 } = (await import(libUrl)) as typeof import('v86');

let emulator: V86Type | null = null;
/** The last save_state(), for savedGzipBytes() and savedBase64(). */
let saved: ArrayBuffer | null = null;
let serial = '';
const waiters = new Set<() => void>();
let failure: Error | null = null;

// v86 reports some failures (e.g. RAM too small for the initrd) only as
// uncaught errors of its own async start-up.
addEventListener('error', (e) => fail(e.error instanceof Error ? e.error : new Error(String(e.message))));
addEventListener('unhandledrejection', (e) => fail(e.reason instanceof Error ? e.reason : new Error(String(e.reason))));
function fail(e: Error): void {
  failure = e;
  for (const w of [...waiters]) w();
}

async function bytes(name: string): Promise<ArrayBuffer> {
  const r = await fetch(`./${name}`);
  if (!r.ok) throw new Error(`${name}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

function waitFor(pattern: RegExp, timeoutMs: number, from: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (failure) return done(() => reject(failure));
      const m = pattern.exec(serial.slice(from));
      if (m) done(() => resolve(m[0]));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`timeout after ${timeoutMs} ms waiting for ${pattern}`))), timeoutMs);
    const done = (f: () => void): void => {
      clearTimeout(timer);
      waiters.delete(check);
      f();
    };
    waiters.add(check);
    check();
  });
}

/** Constructs the emulator with what every start shares, its serial wired
 * to `serial`. */
function start(o: Pick<V86Options, 'memory_size' | 'bios' | 'vga_bios' | 'bzimage' | 'initrd' | 'cmdline' | 'initial_state'>): V86Type {
  const e = new V86({
    wasm_path: './v86.wasm',
    vga_memory_size: 2 * 1024 * 1024,
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    ...o,
  });
  e.add_listener('serial0-output-byte', (b: number) => {
    if (b !== 13) serial += String.fromCharCode(b);
    for (const w of [...waiters]) w();
  });
  emulator = e;
  return e;
}

window.benchV86 = {
  serialOffset: () => serial.length,
  serialText: (from = 0) => serial.slice(from),
  async sendSerial(text) {
    emulator?.serial0_send(text);
  },
  waitForSerial(pattern, timeoutMs = 30_000, options = {}) {
    const re = typeof pattern === 'string' ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : pattern;
    return waitFor(re, timeoutMs, options.from ?? 0);
  },
  async boot(o) {
    const [bios, vgaBios, bzImage, initrd] = await Promise.all(['bios-256k.bin', 'vgabios-stdvga.bin', 'bzImage', 'initrd.cpio'].map(bytes));
    const t0 = performance.now();
    start({
      memory_size: o.memoryMiB * 1024 * 1024,
      bios: { buffer: bios! },
      vga_bios: { buffer: vgaBios! },
      bzimage: { buffer: bzImage! },
      initrd: { buffer: initrd! },
      cmdline: o.cmdline,
    });
    await waitFor(/cpr-playground guest ready/, 300_000, 0);
    const readyMs = performance.now() - t0;
    await waitFor(/guest:~# /, 60_000, 0);
    const now = performance.now();
    return { constructMs: t0, readyMs, promptMs: now - t0, sinceNavigationMs: now };
  },
  async restore(o) {
    const f0 = performance.now();
    // The kernel and initramfs are in the saved RAM: v86 needs only the
    // BIOSes (the machine it builds before it restores) and the state.
    const [bios, vgaBios, state] = await Promise.all(['bios-256k.bin', 'vgabios-stdvga.bin', 'state.bin'].map(bytes));
    const t0 = performance.now();
    const loaded = new Promise<void>((resolve) => {
      const e = start({ memory_size: o.memoryMiB * 1024 * 1024, bios: { buffer: bios! }, vga_bios: { buffer: vgaBios! }, initial_state: { buffer: state! } });
      e.add_listener('emulator-loaded', () => resolve());
    });
    await loaded;
    const from = serial.length;
    emulator!.serial0_send('\n');
    await waitFor(/guest:~# /, 60_000, from);
    const now = performance.now();
    return { fetchMs: t0 - f0, constructMs: t0, promptMs: now - t0, sinceNavigationMs: now };
  },
  async saveRestore() {
    if (!emulator) throw new Error('no emulator');
    const t0 = performance.now();
    const state = await emulator.save_state();
    const t1 = performance.now();
    await emulator.restore_state(state);
    const t2 = performance.now();
    return { saveMs: t1 - t0, restoreMs: t2 - t1, bytes: state.byteLength };
  },
  async saveState() {
    if (!emulator) throw new Error('no emulator');
    const t0 = performance.now();
    saved = await emulator.save_state();
    return { saveMs: performance.now() - t0, bytes: saved.byteLength };
  },
  async savedGzipBytes() {
    if (!saved) throw new Error('no saved state');
    const gz = new Response(new Blob([saved]).stream().pipeThrough(new CompressionStream('gzip')));
    return (await gz.arrayBuffer()).byteLength;
  },
  async savedBase64() {
    if (!saved) throw new Error('no saved state');
    // FileReader's data URL: base64 without a string per byte.
    const url = await new Promise<string>((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result as string);
      r.onerror = () => reject(r.error ?? new Error('reading the state failed'));
      r.readAsDataURL(new Blob([saved!]));
    });
    return url.slice(url.indexOf(',') + 1);
  },
  async destroy() {
    await emulator?.destroy();
    emulator = null;
  },
};
