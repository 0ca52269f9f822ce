// Zeroing a range of a shared WebAssembly.Memory at memset speed, and
// finding its non-zero words at memory speed. Runs in the host worker (the
// clear between two instances is on the pause's path) and in Node for
// unit tests.
//
// A typed array's fill() on a SharedArrayBuffer is several times slower
// than wasm's `memory.fill` (measured in Node 20: 69 MiB in 25-39 ms
// against 6-7 ms, and ~10 ms as 64-bit words), and reading it word by
// word in JavaScript is slow too (16 MiB: 5-7 ms, against ~1 ms in wasm
// 64 bits at a time), so a small module that imports the Memory does both.
// A Memory it cannot import (not shared: unit tests) gets typed arrays.

/**
 * (module
 *   (import "e" "m" (memory 1 65536 shared))
 *   (func (export "fill") (param i32 i32)
 *     local.get 0  i32.const 0  local.get 1  memory.fill)
 *   (func (export "scan") (param $p i32) (param $end i32) (result i32)
 *     ;; the first 8-byte word at or after $p, before $end, that is not
 *     ;; zero, else $end or more ($p and $end multiples of 8)
 *     block
 *       loop
 *         local.get $p  local.get $end  i32.ge_u  br_if 1
 *         local.get $p  i64.load  i64.const 0  i64.ne  br_if 1
 *         local.get $p  i32.const 8  i32.add  local.set $p
 *         br 0
 *       end
 *     end
 *     local.get $p))
 */
const FILL_MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // type section: 0 (func (param i32 i32)), 1 (func (param i32 i32) (result i32))
  0x01, 0x0c, 0x02, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f,
  // import section: "e" "m", shared memory, min 1, max 65536 pages
  0x02, 0x0b, 0x01, 0x01, 0x65, 0x01, 0x6d, 0x02, 0x03, 0x01, 0x80, 0x80, 0x04,
  // function section: fill of type 0, scan of type 1
  0x03, 0x03, 0x02, 0x00, 0x01,
  // export section: "fill" = function 0, "scan" = function 1
  0x07, 0x0f, 0x02, 0x04, 0x66, 0x69, 0x6c, 0x6c, 0x00, 0x00, 0x04, 0x73, 0x63, 0x61, 0x6e, 0x00, 0x01,
  // code section, two bodies
  0x0a, 0x32, 0x02,
  // fill: local.get 0, i32.const 0, local.get 1, memory.fill 0
  0x0b, 0x00, 0x20, 0x00, 0x41, 0x00, 0x20, 0x01, 0xfc, 0x0b, 0x00, 0x0b,
  // scan (see above)
  0x24, 0x00, 0x02, 0x40, 0x03, 0x40,
  0x20, 0x00, 0x20, 0x01, 0x4f, 0x0d, 0x01,
  0x20, 0x00, 0x29, 0x03, 0x00, 0x42, 0x00, 0x52, 0x0d, 0x01,
  0x20, 0x00, 0x41, 0x08, 0x6a, 0x21, 0x00,
  0x0c, 0x00, 0x0b, 0x0b, 0x20, 0x00, 0x0b,
]);

type Fill = (at: number, bytes: number) => void;
type Scan = (at: number, end: number) => number;
interface Ops {
  fill: Fill;
  scan: Scan;
}
const bound = new WeakMap<WebAssembly.Memory, Ops>();
let module: WebAssembly.Module | undefined;

function opsFor(memory: WebAssembly.Memory): Ops {
  let ops = bound.get(memory);
  if (!ops) {
    ops = wasmOps(memory) ?? typedArrayOps(memory);
    bound.set(memory, ops);
  }
  return ops;
}

/** Zeroes `bytes` bytes of `memory` from byte `at`. */
export function zeroFill(memory: WebAssembly.Memory, at: number, bytes: number): void {
  if (bytes > 0) opsFor(memory).fill(at, bytes);
}

/**
 * The address of the first 8-byte word at or after `at`, before `end`,
 * that is not zero, or `end` if there is none. `at` and `end` must be
 * multiples of 8.
 */
export function firstNonZero(memory: WebAssembly.Memory, at: number, end: number): number {
  if ((at | end) & 7) throw new RangeError(`firstNonZero: ${at} and ${end} must be multiples of 8`);
  return at >= end ? end : Math.min(opsFor(memory).scan(at, end), end);
}

/** The module's functions bound to `memory`, or null where it cannot link
 * (a Memory that is not shared, or larger than 4 GiB). */
function wasmOps(memory: WebAssembly.Memory): Ops | null {
  try {
    module ??= new WebAssembly.Module(FILL_MODULE);
    const exports = new WebAssembly.Instance(module, { e: { m: memory } }).exports;
    return { fill: exports.fill as Fill, scan: exports.scan as Scan };
  } catch {
    return null;
  }
}

function typedArrayOps(memory: WebAssembly.Memory): Ops {
  return {
    fill: (at, bytes) => new Uint8Array(memory.buffer, at, bytes).fill(0),
    scan: (at, end) => {
      const words = new Uint32Array(memory.buffer);
      for (let i = at >>> 2; i < end >>> 2; i += 2) if (words[i] !== 0 || words[i + 1] !== 0) return i << 2;
      return end;
    },
  };
}
