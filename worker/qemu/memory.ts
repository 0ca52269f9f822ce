// The shared WebAssembly.Memory that QEMU instances run on, one after the
// other, and its layout. Pure functions over a Memory: used by the host
// worker (creates the Memory, clears it between instances) and by each
// instance worker (memfd.ts keeps its region table in the header).
//
// Layout of the 2 GiB Memory, "cpr-memory-layout/2"; every build that may
// take over a running guest must agree on it (its JS library,
// wasm/emscripten/memfd.js, reads the heap limit and the split from the
// header):
//
//   0          SLOT_SPLIT           HEAP_LIMIT                header base  2 GiB
//   | lower slot | upper slot        |  free  | <- memfd regions | header |
//
// - An instance's stack, static data and heap (sbrk) stay below
//   HEAP_LIMIT (QEMU's __wrap_sbrk asks the JS library, which reads it
//   from the header), so none ever reaches guest RAM.
// - The part below HEAP_LIMIT has two slots for the 32-bit targets: their
//   first build is linked low and keeps its heap below SLOT_SPLIT, their
//   second is linked at SLOT_SPLIT (-sGLOBAL_BASE, wasm/steps/qemu.sh).
//   So the next QEMU of a live update between them can start while the
//   last one still runs the guest (live-update.ts). The 64-bit targets'
//   builds are all linked low and use the whole part, one at a time.
// - memfd regions (guest RAM, ROMs, the CPR state) are allocated
//   downwards from the header, REGION_ALIGN aligned.
// - The header (the last 64 KiB) holds a magic, the layout version, the
//   heap limit, the slot split and the region table: a build or host that
//   speaks another layout is refused with a clear error instead of
//   trampling guest RAM.

import { firstNonZero, zeroFill } from './zero-fill';

/** The Memory is fixed: no growth, so the top never moves. */
export const MEMORY_BYTES = 2 * 1024 ** 3;
export const WASM_PAGE = 0x10000;
export const LAYOUT_TAG = 'cpr-memory-layout/2';
export const LAYOUT_MAGIC = 0x4d525043; // "CPRM"
export const LAYOUT_VERSION = 2;
export const HEADER_BYTES = 0x10000;
/** QEMU's heap top after booting a 128 MiB arm guest was ~70 MiB; 512
 * MiB leaves room for that and for 1 GiB of guest RAM plus the 2x64 MiB
 * pflash of arm virt (aux-ram-share) in the reserved part. */
export const HEAP_LIMIT = 512 * 1024 ** 2;
/** Where the upper slot begins: the static base of the 32-bit targets'
 * second build. A QEMU heap is ~70 MiB after a boot (TCG's code buffer
 * is 32 MiB of it). */
export const SLOT_SPLIT = 256 * 1024 ** 2;
/** >= QEMU's page size (64 KiB) and its RAM block alignment. */
export const REGION_ALIGN = 2 * 1024 ** 2;

// Header words (u32 index from the header base).
const H_MAGIC = 0;
const H_VERSION = 1;
const H_HEAP_LIMIT = 2;
const H_REGIONS_BOTTOM = 3;
const H_FILE_COUNT = 4;
const H_SLOT_SPLIT = 5;
/** The region table starts here (bytes from the header base). */
const TABLE_OFFSET = 64;
export const ENTRY_BYTES = 64;
export const NAME_BYTES = ENTRY_BYTES - 16;
export const MAX_FILES = (HEADER_BYTES - TABLE_OFFSET) / ENTRY_BYTES;

export function headerBase(memory: WebAssembly.Memory): number {
  return memory.buffer.byteLength - HEADER_BYTES;
}

/** A fresh shared Memory with the layout header written. */
export function createSharedMemory(): WebAssembly.Memory {
  const pages = MEMORY_BYTES / WASM_PAGE;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const h = new Uint32Array(memory.buffer, headerBase(memory), HEADER_BYTES / 4);
  h[H_VERSION] = LAYOUT_VERSION;
  h[H_HEAP_LIMIT] = HEAP_LIMIT;
  // Regions start REGION_ALIGN aligned below the header.
  h[H_REGIONS_BOTTOM] = Math.floor(headerBase(memory) / REGION_ALIGN) * REGION_ALIGN;
  h[H_FILE_COUNT] = 0;
  h[H_SLOT_SPLIT] = SLOT_SPLIT;
  h[H_MAGIC] = LAYOUT_MAGIC; // last: a half-written header is not valid
  return memory;
}

/** Why this Memory cannot host our builds, or undefined when it can. */
export function layoutProblem(memory: WebAssembly.Memory): string | undefined {
  if (memory.buffer.byteLength !== MEMORY_BYTES) {
    return `the shared Memory is ${memory.buffer.byteLength} bytes, ${LAYOUT_TAG} needs ${MEMORY_BYTES}`;
  }
  const h = new Uint32Array(memory.buffer, headerBase(memory), 8);
  if (h[H_MAGIC] !== LAYOUT_MAGIC) return `the shared Memory has no ${LAYOUT_TAG} header (magic ${h[H_MAGIC]!.toString(16)})`;
  if (h[H_VERSION] !== LAYOUT_VERSION) return `the shared Memory has layout version ${h[H_VERSION]}, this host speaks ${LAYOUT_VERSION}`;
  return undefined;
}

/** Why a build's JS glue cannot run on this layout, or undefined. The
 * glue of a live-update build carries the tag (wasm/emscripten/memfd.js). */
export function buildLayoutProblem(name: string, glueSource: string): string | undefined {
  if (glueSource.includes(`"${LAYOUT_TAG}"`)) return undefined;
  const other = /"cpr-memory-layout\/[^"]*"/.exec(glueSource)?.[0];
  return other
    ? `${name} speaks memory layout ${other}, the running guest uses "${LAYOUT_TAG}"`
    : `${name} has no live-update support (its JS library does not know memory layout "${LAYOUT_TAG}")`;
}

/** Where the slot of a build whose static data starts at `staticBase`
 * (its glue's CPR_STATIC_BASE, buildStaticBase()) begins. Two builds
 * whose slots begin apart can run on the Memory at the same time. */
export function slotStart(staticBase: number): number {
  return staticBase >= SLOT_SPLIT ? SLOT_SPLIT : 0;
}

/** The static base a build's glue was linked at (memfd.js), or undefined
 * for a build without it (an older layout: it keeps the one slot). */
export function buildStaticBase(glueSource: string): number | undefined {
  const m = /\bCPR_STATIC_BASE\s*=\s*(\d+)/.exec(glueSource);
  return m ? Number(m[1]) : undefined;
}

/** One memfd's record in the header: where its bytes live. */
export interface RegionEntry {
  index: number;
  base: number;
  cap: number;
  size: number;
  inUse: boolean;
  name: string;
}

const nameEncoder = new TextEncoder();
const nameDecoder = new TextDecoder();

/** The region table in the header. Writers run on one thread at a time:
 * the main thread of the one instance that is alive. */
export class RegionTable {
  private readonly words: Uint32Array;
  private readonly bytes: Uint8Array;
  private readonly base: number;

  constructor(memory: WebAssembly.Memory) {
    const problem = layoutProblem(memory);
    if (problem) throw new Error(problem);
    this.base = headerBase(memory);
    this.words = new Uint32Array(memory.buffer, this.base, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(memory.buffer);
  }

  get heapLimit(): number {
    return this.words[H_HEAP_LIMIT]!;
  }

  /** The lowest byte any region uses: the reserved part is [this, header). */
  get regionsBottom(): number {
    return this.words[H_REGIONS_BOTTOM]!;
  }

  get count(): number {
    return this.words[H_FILE_COUNT]!;
  }

  entry(index: number): RegionEntry {
    const w = (TABLE_OFFSET + index * ENTRY_BYTES) / 4;
    const at = this.base + TABLE_OFFSET + index * ENTRY_BYTES + 16;
    const raw = this.bytes.subarray(at, at + NAME_BYTES);
    const end = raw.indexOf(0);
    return {
      index,
      base: this.words[w]!,
      cap: this.words[w + 1]!,
      size: this.words[w + 2]!,
      inUse: this.words[w + 3] === 1,
      // Copy: TextDecoder does not read shared memory.
      name: nameDecoder.decode(raw.slice(0, end < 0 ? NAME_BYTES : end)),
    };
  }

  entries(): RegionEntry[] {
    return Array.from({ length: this.count }, (_, i) => this.entry(i));
  }

  /** A new, empty file (no region yet); reuses a free slot. */
  add(name: string): number {
    let index = this.entries().findIndex((e) => !e.inUse && e.cap === 0);
    if (index < 0) {
      index = this.count;
      if (index >= MAX_FILES) throw new RangeError(`too many memfds (${MAX_FILES})`);
      this.words[H_FILE_COUNT] = index + 1;
    }
    this.write(index, { base: 0, cap: 0, size: 0, inUse: true, name });
    return index;
  }

  setSize(index: number, size: number): void {
    this.words[(TABLE_OFFSET + index * ENTRY_BYTES) / 4 + 2] = size;
  }

  /**
   * Gives file `index` room for `size` bytes: first a free region that is
   * big enough, else a new one below the lowest. Returns false when the
   * reserved part is full (ENOMEM for QEMU).
   */
  reserve(index: number, size: number): boolean {
    const e = this.entry(index);
    if (size <= e.cap) return true;
    const cap = Math.max(REGION_ALIGN, Math.ceil(size / REGION_ALIGN) * REGION_ALIGN);
    // A free region's bytes may be dirty: zero what we hand out.
    const free = this.entries()
      .filter((f) => !f.inUse && f.cap >= cap)
      .sort((a, b) => a.cap - b.cap)[0];
    let base: number;
    if (free) {
      base = free.base;
      this.write(free.index, { ...free, base: 0, cap: 0, size: 0, name: '' });
      this.bytes.fill(0, base, base + cap);
      // keep the whole free region with this file
      return this.place(index, e, base, free.cap);
    }
    base = this.regionsBottom - cap;
    if (base < this.heapLimit) return false;
    this.words[H_REGIONS_BOTTOM] = base;
    // Fresh regions come from memory no instance has written.
    return this.place(index, e, base, cap);
  }

  /** Marks a file's region free for reuse (its last fd was closed). */
  release(index: number): void {
    const e = this.entry(index);
    this.write(index, { ...e, size: 0, inUse: false, name: '' });
  }

  /**
   * Puts back entries saved earlier (a failed instance may have closed and
   * freed them, and reused their regions). Other entries that claim the
   * same regions are dropped.
   */
  restore(saved: readonly RegionEntry[]): void {
    const bases = new Set(saved.map((e) => e.base));
    const indices = new Set(saved.map((e) => e.index));
    for (const e of this.entries()) {
      if (!indices.has(e.index) && bases.has(e.base) && e.cap > 0) this.write(e.index, { base: 0, cap: 0, size: 0, inUse: false, name: '' });
    }
    for (const e of saved) this.write(e.index, e);
  }

  /**
   * Fills an empty table with entries of another Memory's (a snapshot's
   * RAM image, ram-image.ts): same indices, same regions. Slots between
   * them stay free and empty.
   */
  load(entries: readonly RegionEntry[]): void {
    if (this.count !== 0) throw new Error('the region table is not empty');
    const top = entries.reduce((n, e) => Math.max(n, e.index + 1), 0);
    this.words[H_FILE_COUNT] = top;
    for (let i = 0; i < top; i++) this.write(i, { base: 0, cap: 0, size: 0, inUse: false, name: '' });
    for (const e of entries) this.write(e.index, e);
    const bottom = entries.reduce((n, e) => Math.min(n, e.base), this.regionsBottom);
    this.words[H_REGIONS_BOTTOM] = bottom;
  }

  private place(index: number, e: RegionEntry, base: number, cap: number): boolean {
    if (e.cap > 0) {
      this.bytes.copyWithin(base, e.base, e.base + e.size);
      const slot = this.add(''); // the old region becomes a free entry
      this.write(slot, { base: e.base, cap: e.cap, size: 0, inUse: false, name: '' });
    }
    this.write(index, { ...e, base, cap });
    return true;
  }

  private write(index: number, e: Omit<RegionEntry, 'index'>): void {
    const w = (TABLE_OFFSET + index * ENTRY_BYTES) / 4;
    this.words[w] = e.base;
    this.words[w + 1] = e.cap;
    this.words[w + 2] = e.size;
    this.words[w + 3] = e.inUse ? 1 : 0;
    const at = this.base + TABLE_OFFSET + index * ENTRY_BYTES + 16;
    this.bytes.fill(0, at, at + NAME_BYTES);
    const name = nameEncoder.encode(e.name).subarray(0, NAME_BYTES - 1);
    this.bytes.set(name, at);
  }
}

/**
 * Zeroes [from, top) before the next instance starts there. The new
 * build's start function initialises its data segments only if the
 * shared-memory init flag (a word in its static data) is still zero, and
 * its malloc takes fresh sbrk memory as zeroed. Below `dirtyTop` (the old
 * heap top) nearly every page was written: those are filled. Above it, up
 * to `top` (a margin, or the heap limit when the top is unknown), most
 * pages were never touched: only the pages holding a non-zero word are
 * filled, because writing zeros into an untouched page makes the browser
 * back it with real memory for good (seen: +16 MiB of tab memory once per
 * margin), where reading it does not. Returns the bytes below which all is
 * zero.
 */
export function clearBelow(memory: WebAssembly.Memory, top: number, dirtyTop = top, from = 0): number {
  const end = Math.min(Math.max(0, top), HEAP_LIMIT);
  const filled = Math.min(Math.max(0, dirtyTop), end) & ~(PAGE_BYTES - 1);
  if (filled > from) zeroFill(memory, from, filled - from);
  zeroDirtyPages(memory, Math.max(filled, from), end);
  return end;
}

const PAGE_BYTES = 4096;

/** Fills with zeros each page in [from, end) (from page-aligned) that
 * holds a non-zero byte, and nothing else. */
function zeroDirtyPages(memory: WebAssembly.Memory, from: number, end: number): void {
  const whole = end & ~7;
  for (let at = from; at < whole; ) {
    const found = firstNonZero(memory, at, whole);
    if (found >= whole) break;
    const page = found & ~(PAGE_BYTES - 1);
    const next = Math.min(page + PAGE_BYTES, end);
    zeroFill(memory, found, next - found);
    at = next;
  }
  // The last bytes when `end` is not a multiple of 8.
  const tail = new Uint8Array(memory.buffer, whole, end - whole);
  if (tail.some((b) => b !== 0)) tail.fill(0);
}
