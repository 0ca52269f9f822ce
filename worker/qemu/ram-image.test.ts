// Runs in Node (vitest): guest RAM out of one Memory and into a fresh one.
import { describe, expect, it } from 'vitest';
import { createSharedMemory, HEAP_LIMIT, REGION_ALIGN, RegionTable } from './memory';
import { captureRam, IMAGE_PAGE, ImageStream, ramLayoutProblem, type RamImage } from './ram-image';

/** Why an image does not fit, or undefined: its layout, then its data fed
 * to a checking stream in pieces of `piece` bytes. */
function imageProblem(image: RamImage, piece = 1000): string | undefined {
  const layout = ramLayoutProblem(image);
  if (layout) return layout;
  try {
    const s = new ImageStream(image);
    for (let at = 0; at < image.data.length; at += piece) s.write(image.data.subarray(at, at + piece));
    s.end();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

/** Places an image into `memory` as a snapshot file's reader does: its data in pieces of `piece` bytes. */
function place(memory: WebAssembly.Memory, image: RamImage, piece: number): void {
  const s = new ImageStream(image, memory);
  for (let at = 0; at < image.data.length; at += piece) s.write(image.data.subarray(at, at + piece));
  s.end();
}

const MiB = 2 ** 20;

/** A Memory with QEMU's usual memfds: RAM with a few written pages, a
 * ROM, the CPR state; and one memfd that is not open any more. */
function guestMemory(): { memory: WebAssembly.Memory; open: { fd: number; file: number; path: string }[] } {
  const memory = createSharedMemory();
  const table = new RegionTable(memory);
  const file = (name: string, size: number): number => {
    const i = table.add(name);
    table.reserve(i, size);
    table.setSize(i, size);
    return i;
  };
  const ram = file('ram0', 8 * MiB);
  const gone = file('old', 2 * MiB);
  const rom = file('/rom@etc/acpi/tables', 3000);
  const cpr = file('QEMU_CPR_EXEC_STATE', 200);
  const bytes = new Uint8Array(memory.buffer);
  const base = (i: number): number => table.entry(i).base;
  bytes.set([1, 2, 3], base(ram));
  bytes[base(ram) + 5 * IMAGE_PAGE + 4095] = 9; // a page's last byte
  bytes[base(ram) + 8 * MiB - 1] = 7; // the last page
  bytes.fill(0xaa, base(gone), base(gone) + 100);
  bytes.fill(0x5a, base(rom), base(rom) + 3000); // a ragged tail
  bytes.set([0x43, 0x50, 0x52], base(cpr));
  return {
    memory,
    open: [
      { fd: 15, file: ram, path: '/dev/memfd/0-ram0' },
      { fd: 20, file: rom, path: '/dev/memfd/2-_rom@etc_acpi_tables' },
      { fd: 26, file: cpr, path: '/dev/memfd/3-QEMU_CPR_EXEC_STATE' },
    ],
  };
}

describe('RAM images', () => {
  it('keep the open memfds, their non-zero pages only, and QEMU\'s CPR variables', () => {
    const { memory, open } = guestMemory();
    const image = captureRam(memory, open, ['QEMU_CPR_EXEC_STATE=26', 'PATH=/bin', 'HOME=/home/web_user']);
    expect(image.env).toEqual({ QEMU_CPR_EXEC_STATE: '26' });
    expect(image.regions.map((r) => [r.name, r.pages])).toEqual([['ram0', 3], ['/rom@etc/acpi/tables', 1], ['QEMU_CPR_EXEC_STATE', 1]]);
    // 8 MiB of RAM: a 256-byte page map and 3 pages, not 8 MiB.
    expect(image.data.length).toBe(256 + 3 * IMAGE_PAGE + 1 + IMAGE_PAGE + 1 + IMAGE_PAGE);
    expect(imageProblem(image)).toBeUndefined();
  });

  // Whole, in pieces that split page maps and pages, and a byte at a time.
  it.each([1 << 30, 4097, 1])('come back byte for byte in a fresh Memory, at the same places, under the same table entries (fed %i bytes at a time)', (piece) => {
    const { memory, open } = guestMemory();
    const image = captureRam(memory, open, ['QEMU_CPR_EXEC_STATE=26']);
    const fresh = createSharedMemory();
    place(fresh, image, piece);
    const before = new RegionTable(memory);
    const after = new RegionTable(fresh);
    for (const o of open) {
      const e = before.entry(o.file);
      expect(after.entry(o.file)).toEqual(e);
      expect(Buffer.from(new Uint8Array(fresh.buffer, e.base, e.cap)).equals(Buffer.from(new Uint8Array(memory.buffer, e.base, e.cap)))).toBe(true);
    }
    // The memfd no fd had open is a free slot, and new files go below the lowest region.
    expect(after.entry(1)).toMatchObject({ inUse: false, cap: 0 });
    expect(after.regionsBottom).toBe(Math.min(...image.regions.map((r) => r.base)));
    const next = after.add('new');
    expect(next).toBe(1);
    expect(after.reserve(next, REGION_ALIGN)).toBe(true);
    expect(after.entry(next).base).toBe(after.regionsBottom);
    expect(() => new ImageStream(image, fresh)).toThrow(/fresh Memory/);
  });

  it('that lie about themselves are refused before anything is placed', () => {
    const { memory, open } = guestMemory();
    const good = captureRam(memory, open, []);
    const edit = (f: (i: RamImage) => void): string | undefined => {
      const i: RamImage = structuredClone(good);
      f(i);
      return imageProblem(i);
    };
    expect(edit((i) => (i.regions[0]!.base = HEAP_LIMIT - REGION_ALIGN))).toMatch(/outside the reserved part/);
    expect(edit((i) => (i.regions[0]!.base += 4096))).toMatch(/not aligned/);
    expect(edit((i) => (i.regions[1]!.base = i.regions[0]!.base))).toMatch(/overlap/);
    expect(edit((i) => (i.regions[0]!.size = i.regions[0]!.cap + 1))).toMatch(/more than its room/);
    expect(
      edit((i) => {
        i.regions[0]!.pages += 1;
        const longer = new Uint8Array(i.data.length + IMAGE_PAGE);
        longer.set(i.data);
        i.data = longer;
      }),
    ).toMatch(/page map marks 3 pages, its entry says 4/);
    expect(edit((i) => (i.data = i.data.subarray(0, -1)))).toMatch(/ends before its regions do/);
    expect(edit((i) => (i.data = new Uint8Array([...i.data, 0])))).toMatch(/more bytes than its regions need/);
    // A page map with a bit past its region's pages.
    expect(edit((i) => (i.regions[1]!.pages = 2))).toMatch(/claims more pages than it has/);
    expect(edit((i) => (i.open[0]!.file = 9))).toMatch(/does not have/);
    expect(edit((i) => (i.open[1]!.fd = i.open[0]!.fd))).toMatch(/not a usable fd/);
    expect(edit((i) => (i.open[0]!.path = '/dev/../snapshot.state'))).toMatch(/no usable path/);
    expect(edit((i) => (i.env = { LD_PRELOAD: 'x' }))).toMatch(/not one of QEMU's CPR variables/);
  });
});
