// Runs in Node: a tiny static guest program, written into the guest by
// the shell's printf, that loops long enough for the JIT to compile its
// loop and then faults inside it: an x86 division by zero (SIGFPE), or
// on arm, whose integer division does not trap, a load from address 0
// (SIGSEGV). The JIT battery checks that the guest's signal arrives the
// same under both engines. The guests have no compiler, so the machine
// code is here, hand-assembled (see the comments).
/** The trap program is hand-assembled for the JIT's guests (the battery's). */
export type TrapGuest = 'arm' | 'i386';

/** Loop iterations before the fault: far above the JIT's threshold (2000). */
const ITERATIONS = 200_000;

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

const CODE: Record<TrapGuest, { machine: number; flags: number; base: number; code: number[] }> = {
  i386: {
    machine: 3, // EM_386
    flags: 0,
    base: 0x08048000,
    code: [
      0xb9, ...le32(ITERATIONS), // mov ecx, ITERATIONS
      0xb8, ...le32(1), //          loop: mov eax, 1
      0x31, 0xd2, //                xor edx, edx
      0x49, //                      dec ecx
      0xf7, 0xf1, //                div ecx        (ecx = 0 at the end: #DE)
      0xeb, 0xf4, //                jmp loop
    ],
  },
  arm: {
    machine: 40, // EM_ARM
    flags: 0x05000000, // EABI version 5
    base: 0x10000,
    code: [
      ...le32(0xe3000000 | ((ITERATIONS >>> 12) & 0xf0000) | (1 << 12) | (ITERATIONS & 0xfff)), // movw r1, #lo16
      ...le32(0xe3400000 | ((ITERATIONS >>> 28) << 16) | (1 << 12) | ((ITERATIONS >>> 16) & 0xfff)), // movt r1, #hi16
      ...le32(0xe1a0200d), // mov r2, sp
      ...le32(0xe2511001), // loop: subs r1, r1, #1
      ...le32(0x03a02000), // moveq r2, #0
      ...le32(0xe5920000), // ldr r0, [r2]  (r2 = 0 at the end: data abort)
      ...le32(0xeafffffb), // b loop
    ],
  },
};

/** An ELF32 executable: the header, a loadable segment and a
 * non-executable stack (without PT_GNU_STACK the kernel logs a warning
 * with a timestamp, different in every run), then the code. */
function elf(guest: TrapGuest): number[] {
  const { machine, flags, base, code } = CODE[guest];
  const headers = 52 + 2 * 32;
  const size = headers + code.length;
  const le16 = (v: number): number[] => [v & 0xff, v >>> 8];
  const header = [
    0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ELF32, little-endian
    ...le16(2), ...le16(machine), ...le32(1), // ET_EXEC, machine, version
    ...le32(base + headers), ...le32(52), ...le32(0), ...le32(flags), // entry, phoff, shoff, flags
    ...le16(52), ...le16(32), ...le16(2), ...le16(0), ...le16(0), ...le16(0),
  ];
  // PT_LOAD of the whole file, read and execute; PT_GNU_STACK, read and write.
  const load = [...le32(1), ...le32(0), ...le32(base), ...le32(base), ...le32(size), ...le32(size), ...le32(5), ...le32(0x1000)];
  const stack = [...le32(0x6474e551), ...le32(0), ...le32(0), ...le32(0), ...le32(0), ...le32(0), ...le32(6), ...le32(16)];
  return [...header, ...load, ...stack, ...code];
}

/** The program's path in the guest. */
export const TRAP_PATH = '/tmp/trap';

/** A command line that writes the program to TRAP_PATH. It is typed on a
 * line of its own: busybox's line editor keeps 1024 characters of a line,
 * and the program's printf takes about 500. */
export function writeTrapCommand(guest: TrapGuest): string {
  const octal = elf(guest).map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
  return `printf '${octal}' > ${TRAP_PATH}; chmod +x ${TRAP_PATH}`;
}

/** Runs the program and prints its status as `trap rc=N`. */
export const RUN_TRAP = `${TRAP_PATH}; echo trap rc=$?`;

/** The status the shell reports: 128 + SIGFPE (8), or 128 + SIGSEGV (11). */
export const TRAP_STATUS: Record<TrapGuest, number> = { i386: 136, arm: 139 };
