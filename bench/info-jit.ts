// Runs in Node: reads the TCI JIT's counts out of QEMU's `info jit`.
import type { JitCounts } from './results';

/** `info jit`'s TCI JIT lines (wasm/patches/tci-jit, patch 3) as numbers:
 * null when it says off; an error when the lines are not there at all. */
export function parseInfoJit(text: string): JitCounts | null {
  const state = /TCI JIT: (on|off)/.exec(text)?.[1];
  if (state === undefined) throw new Error(`info jit has no TCI JIT line: ${text.slice(-300)}`);
  if (state === 'off') return null;
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`info jit: no match for ${re}: ${text.slice(-300)}`);
    return Number(m[1]);
  };
  const compiled = num(/blocks compiled\s+(\d+)/);
  // Builds before regions compiled one module per block and counted blocks alive.
  const regions = /in (\d+) modules/.exec(text);
  const compileUs = /compile time\s+(\d+) us/.exec(text);
  return {
    compiled,
    modules: regions ? Number(regions[1]) : compiled,
    wasmBytes: num(/blocks compiled\s+\d+ \((\d+) bytes of wasm\)/),
    modulesAlive: regions ? num(/modules alive\s+(\d+)/) : num(/blocks alive\s+(\d+)/),
    refused: num(/blocks interpreted\s+(\d+) \(cannot compile\)/),
    failed: num(/(\d+) \(refused by the host\)/),
    compileUs: compileUs ? Number(compileUs[1]) : null,
  };
}
