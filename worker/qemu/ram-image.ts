// Guest RAM as the live-update layout keeps it, out of the shared Memory
// and back into a fresh one: the RAM part of a snapshot (issue 13). Pure
// code over a Memory; the instance worker captures (while QEMU waits in
// its exec hook, the VM stopped), the host worker that checks a snapshot
// file places it as it reads the file (ImageStream).
//
// A capture is what a cpr-exec hands to the next QEMU (memory.ts): the
// memfds open at exec (guest RAM, ROMs, the CPR state), their entries in
// the region table, and their bytes. The bytes are kept a page at a time
// and only pages that are not all zeros: per region, a bitmap of its
// pages, then the non-zero pages in order. A booted 128 MiB guest keeps
// ~9 MiB of 128.
import type { OpenMemfd } from './memfd';
import { HEADER_BYTES, HEAP_LIMIT, MAX_FILES, MEMORY_BYTES, NAME_BYTES, REGION_ALIGN, RegionTable, type RegionEntry } from './memory';

/** The unit of the bitmap: the guest's page (and the host's). */
export const IMAGE_PAGE = 4096;

/** One memfd's region, as the table had it at the capture. */
export interface ImageRegion {
  index: number;
  name: string;
  base: number;
  cap: number;
  size: number;
  /** How many of its pages are in the image (not all zeros). */
  pages: number;
}

/** Guest RAM out of the Memory: what a new QEMU needs to take it over. */
export interface RamImage {
  /** The fds open on memfds at the capture: reopened under the same numbers. */
  open: OpenMemfd[];
  /** QEMU's CPR variables from its exec (QEMU_CPR_EXEC_STATE: the fd of
   * the memfd with the CPR state), for the next QEMU's environment. */
  env: Record<string, string>;
  regions: ImageRegion[];
  /** Per region in order: its page bitmap, then its non-zero pages. */
  data: Uint8Array;
}

/** QEMU's own variables for the exec'd QEMU; the rest of its
 * environment is the runtime's and comes with every instance. */
const CPR_VARIABLE = /^QEMU_CPR_[A-Z_]+$/;

function bitmapBytes(size: number): number {
  return Math.ceil(Math.ceil(size / IMAGE_PAGE) / 8);
}

/** Bytes of `data` that a region with `pages` non-zero pages takes. */
function regionBytes(r: Pick<ImageRegion, 'size' | 'pages'>): number {
  return bitmapBytes(r.size) + r.pages * IMAGE_PAGE;
}

function pageIsZero(words: Int32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (words[i] !== 0) return false;
  return true;
}

/** Calls `run(first, count)` for each run of consecutive set bits of a page map. */
function eachRun(map: Uint8Array, pages: number, run: (first: number, count: number) => void): void {
  for (let p = 0; p < pages; ) {
    if (!(map[p >> 3]! & (1 << (p & 7)))) {
      p++;
      continue;
    }
    let q = p + 1;
    while (q < pages && map[q >> 3]! & (1 << (q & 7))) q++;
    run(p, q - p);
    p = q;
  }
}

/**
 * The regions of the memfds in `open`, out of the Memory. Synchronous: it
 * runs while QEMU waits for its exec hook's answer with the VM stopped, so
 * nothing writes guest RAM meanwhile. One pass finds the non-zero pages,
 * then those alone are copied, a run of pages at a time, into a buffer of
 * the exact size.
 */
export function captureRam(memory: WebAssembly.Memory, open: readonly OpenMemfd[], environ: readonly string[]): RamImage {
  const table = new RegionTable(memory);
  const wanted = new Set(open.map((o) => o.file));
  const entries = table.entries().filter((e) => wanted.has(e.index) && e.inUse);
  const words = new Int32Array(memory.buffer);
  const bytes = new Uint8Array(memory.buffer);
  const bitmaps = entries.map((e) => {
    const map = new Uint8Array(bitmapBytes(e.size));
    let pages = 0;
    for (let p = 0, at = e.base; at < e.base + e.size; p++, at += IMAGE_PAGE) {
      const end = Math.min(at + IMAGE_PAGE, e.base + e.size);
      // Regions are REGION_ALIGN aligned and sizes page multiples in
      // practice; a ragged tail is compared byte by byte.
      const zero = end - at === IMAGE_PAGE ? pageIsZero(words, at >> 2, end >> 2) : bytes.subarray(at, end).every((b) => b === 0);
      if (!zero) {
        map[p >> 3]! |= 1 << (p & 7);
        pages++;
      }
    }
    return { map, pages };
  });
  const regions: ImageRegion[] = entries.map((e, i) => ({ index: e.index, name: e.name, base: e.base, cap: e.cap, size: e.size, pages: bitmaps[i]!.pages }));
  const data = new Uint8Array(regions.reduce((n, r) => n + regionBytes(r), 0));
  let out = 0;
  entries.forEach((e, i) => {
    const { map } = bitmaps[i]!;
    data.set(map, out);
    out += map.length;
    eachRun(map, Math.ceil(e.size / IMAGE_PAGE), (first, count) => {
      const at = e.base + first * IMAGE_PAGE;
      // A ragged tail stays zero-padded to a whole page in the image.
      data.set(bytes.subarray(at, Math.min(at + count * IMAGE_PAGE, e.base + e.size)), out);
      out += count * IMAGE_PAGE;
    });
  });
  const env: Record<string, string> = {};
  for (const e of environ) {
    const i = e.indexOf('=');
    if (i > 0 && CPR_VARIABLE.test(e.slice(0, i))) env[e.slice(0, i)] = e.slice(i + 1);
  }
  return { open: open.map((o) => ({ ...o })), env, regions, data };
}

/** A RAM image without its data: what a snapshot file's header says of it. */
export type RamLayout = Omit<RamImage, 'data'>;

/** Bytes of data that a layout's regions take. */
export function layoutBytes(layout: Pick<RamLayout, 'regions'>): number {
  return layout.regions.reduce((n, r) => n + regionBytes(r), 0);
}

/** Why a layout (external input: a snapshot file's header) cannot be
 * placed, or undefined. Checks every number against the memory layout;
 * the page maps are checked as the data comes (ImageStream). */
export function ramLayoutProblem(layout: RamLayout): string | undefined {
  const headerBase = MEMORY_BYTES - HEADER_BYTES;
  const seen = new Set<number>();
  const spans: [number, number][] = [];
  for (const r of layout.regions) {
    const ints = [r.index, r.base, r.cap, r.size, r.pages];
    if (!ints.every((n) => Number.isSafeInteger(n) && n >= 0)) return `region ${JSON.stringify(r.name)} has a field that is not a whole number`;
    if (r.index >= MAX_FILES || seen.has(r.index)) return `region ${r.index} is out of the table or given twice`;
    seen.add(r.index);
    if (typeof r.name !== 'string' || new TextEncoder().encode(r.name).length >= NAME_BYTES) return `region ${r.index} has no usable name`;
    if (r.base % REGION_ALIGN !== 0 || r.cap % REGION_ALIGN !== 0 || r.cap === 0) return `region ${r.index} is not aligned to the layout`;
    if (r.base < HEAP_LIMIT || r.base + r.cap > headerBase) return `region ${r.index} lies outside the reserved part of the Memory`;
    if (r.size > r.cap) return `region ${r.index} holds more than its room`;
    if (r.pages > Math.ceil(r.size / IMAGE_PAGE)) return `region ${r.index} claims more pages than it has`;
    spans.push([r.base, r.base + r.cap]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) if (spans[i]![0] < spans[i - 1]![1]) return 'two regions overlap';
  const fds = new Set<number>();
  for (const o of layout.open) {
    if (!Number.isSafeInteger(o.fd) || o.fd < 3 || o.fd > 4095 || fds.has(o.fd)) return `fd ${JSON.stringify(o.fd)} is not a usable fd number`;
    fds.add(o.fd);
    if (!seen.has(o.file)) return `fd ${o.fd} names region ${JSON.stringify(o.file)}, which the image does not have`;
    if (typeof o.path !== 'string' || !o.path.startsWith('/') || o.path.split('/').includes('..')) return `fd ${o.fd} has no usable path`;
  }
  if (typeof layout.env !== 'object' || layout.env === null) return 'it has no environment for QEMU';
  for (const [k, v] of Object.entries(layout.env)) {
    if (!CPR_VARIABLE.test(k) || typeof v !== 'string' || v.length > 64) return `its environment has ${JSON.stringify(k)}, not one of QEMU's CPR variables`;
  }
  return undefined;
}

/**
 * A RAM image's data as it comes, a piece at a time and in order (a
 * snapshot file is read in pieces, not whole): each region's page map is
 * checked against its entry, and with a Memory (a fresh one:
 * createSharedMemory) the regions are put where they were, under the same
 * table entries, and the pages into them as they arrive. The next QEMU
 * adopts the layout's `open` fds. Throws an Error saying what does not
 * fit; the layout must have passed ramLayoutProblem.
 */
export class ImageStream {
  private readonly bytes: Uint8Array | null;
  private region = 0;
  private map = new Uint8Array(0);
  private mapAt = 0;
  /** The current region's runs of pages, once its map is complete. */
  private runs: [first: number, count: number][] | null = null;
  private run = 0;
  private runAt = 0;

  constructor(
    private readonly layout: RamLayout,
    memory?: WebAssembly.Memory,
  ) {
    this.bytes = null;
    if (memory) {
      const table = new RegionTable(memory);
      if (table.count !== 0) throw new Error('a RAM image goes into a fresh Memory only');
      table.load(layout.regions.map((r): RegionEntry => ({ index: r.index, name: r.name, base: r.base, cap: r.cap, size: r.size, inUse: true })));
      this.bytes = new Uint8Array(memory.buffer);
    }
    this.enter();
  }

  /** The next bytes of the data. */
  write(chunk: Uint8Array): void {
    for (let at = 0; at < chunk.length; ) {
      this.settle();
      const r = this.layout.regions[this.region];
      if (!r) throw new Error(`the RAM image has more bytes than its regions need (${layoutBytes(this.layout)})`);
      if (!this.runs) {
        const n = Math.min(this.map.length - this.mapAt, chunk.length - at);
        this.map.set(chunk.subarray(at, at + n), this.mapAt);
        this.mapAt += n;
        at += n;
        continue;
      }
      const [first, count] = this.runs[this.run]!;
      const n = Math.min(count * IMAGE_PAGE - this.runAt, chunk.length - at);
      if (this.bytes) {
        // A ragged tail is zero-padded to a whole page in the image.
        const to = r.base + first * IMAGE_PAGE + this.runAt;
        const keep = Math.min(n, r.base + r.size - to);
        if (keep > 0) this.bytes.set(chunk.subarray(at, at + keep), to);
      }
      this.runAt += n;
      at += n;
      if (this.runAt === count * IMAGE_PAGE) {
        this.run++;
        this.runAt = 0;
      }
    }
    this.settle();
  }

  /** The data ended: throws unless every region had all its bytes. */
  end(): void {
    this.settle();
    if (this.region < this.layout.regions.length) throw new Error(`the RAM image ends before its regions do (they need ${layoutBytes(this.layout)} bytes)`);
  }

  private enter(): void {
    const r = this.layout.regions[this.region];
    this.map = new Uint8Array(r ? bitmapBytes(r.size) : 0);
    this.mapAt = 0;
    this.runs = null;
    this.run = 0;
    this.runAt = 0;
  }

  /** Moves past what is complete: a page map (checked), a region. */
  private settle(): void {
    for (let r = this.layout.regions[this.region]; r; r = this.layout.regions[this.region]) {
      if (this.mapAt < this.map.length) return;
      if (!this.runs) {
        let marked = 0;
        for (const b of this.map) for (let v = b; v; v &= v - 1) marked++;
        const runs: [number, number][] = [];
        eachRun(this.map, Math.ceil(r.size / IMAGE_PAGE), (first, count) => runs.push([first, count]));
        if (marked !== r.pages || runs.reduce((n, [, c]) => n + c, 0) !== marked) {
          throw new Error(`region ${r.index}'s page map marks ${marked} pages, its entry says ${r.pages}`);
        }
        this.runs = runs;
      }
      if (this.run < this.runs.length) return;
      this.region++;
      this.enter();
    }
  }
}
