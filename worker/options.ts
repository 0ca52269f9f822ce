// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// Boot options are external input (they come from the page, from
// window.playground, from tutorials): check every field and say what is
// wrong and how to fix it, rather than letting QEMU fail obscurely.
import {
  DEFAULT_BOOT_TIMEOUT_MS,
  DEFAULT_RAM_MIB,
  GUESTS,
  PlaygroundError,
  RAM_MAX_MIB,
  RAM_MIN_MIB,
  RAM_STEP_MIB,
  BOOTED_SNAPSHOT_RAM_MIB,
  ACCELS,
  JIT_GUESTS,
  type Accel,
  type BootFrom,
  type BootOptions,
  type GuestName,
} from './api';

export interface ResolvedBootOptions {
  guest: GuestName;
  ramMiB: number;
  build: string | undefined;
  bootTimeoutMs: number;
  extraArgs: string[];
  from: BootFrom;
  accel: Accel;
}

const KNOWN: readonly (keyof BootOptions)[] = ['guest', 'ramMiB', 'build', 'bootTimeoutMs', 'extraArgs', 'from', 'accel'];

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const prefixed = candidates.find((c) => lower.length >= 2 && c.toLowerCase().startsWith(lower));
  if (prefixed) return prefixed;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function bad(message: string): never {
  throw new PlaygroundError('bad-options', message);
}

/** Checks a RAM size; returns an error message or null. */
export function ramError(ramMiB: unknown): string | null {
  if (typeof ramMiB !== 'number' || !Number.isInteger(ramMiB)) {
    return `RAM size must be a whole number of MiB, got ${JSON.stringify(ramMiB)}`;
  }
  if (ramMiB < RAM_MIN_MIB || ramMiB > RAM_MAX_MIB || ramMiB % RAM_STEP_MIB !== 0) {
    return (
      `invalid RAM size ${ramMiB} MiB: choose ${RAM_MIN_MIB} to ${RAM_MAX_MIB} MiB ` +
      `in steps of ${RAM_STEP_MIB} MiB (e.g. ${DEFAULT_RAM_MIB})`
    );
  }
  return null;
}

export function resolveBootOptions(input: unknown): ResolvedBootOptions {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) bad('boot options must be an object, e.g. { guest: "arm", ramMiB: 128 }');
  const o = input as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!(KNOWN as readonly string[]).includes(key)) {
      const hint = suggest(key, KNOWN);
      bad(`unknown boot option "${key}".${hint ? ` Did you mean "${hint}"?` : ''} Known options: ${KNOWN.join(', ')}`);
    }
  }
  const guest = o.guest ?? 'arm';
  if (typeof guest !== 'string' || !(GUESTS as readonly string[]).includes(guest)) {
    const hint = typeof guest === 'string' ? suggest(guest, GUESTS) : undefined;
    bad(`unknown guest ${JSON.stringify(guest)}.${hint ? ` Did you mean "${hint}"?` : ''} Guests: ${GUESTS.join(', ')}`);
  }
  const ramMiB = o.ramMiB ?? DEFAULT_RAM_MIB;
  const ramProblem = ramError(ramMiB);
  if (ramProblem) bad(ramProblem);
  const build = o.build;
  if (build !== undefined && (typeof build !== 'string' || build === '')) bad('build must be a build name such as "v1"');
  const bootTimeoutMs = o.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  if (typeof bootTimeoutMs !== 'number' || !(bootTimeoutMs > 0) || !Number.isFinite(bootTimeoutMs)) {
    bad(`bootTimeoutMs must be a positive number of milliseconds, got ${JSON.stringify(bootTimeoutMs)}`);
  }
  const extraArgs = o.extraArgs ?? [];
  if (!Array.isArray(extraArgs) || !extraArgs.every((a): a is string => typeof a === 'string')) {
    bad('extraArgs must be an array of strings, e.g. ["-S"]');
  }
  const from = o.from ?? 'scratch';
  if (from !== 'scratch' && from !== 'snapshot') bad(`from must be "snapshot" or "scratch", got ${JSON.stringify(from)}`);
  if (from === 'snapshot' && ramMiB !== BOOTED_SNAPSHOT_RAM_MIB) {
    bad(`the booted snapshot has ${BOOTED_SNAPSHOT_RAM_MIB} MiB of RAM, not ${String(ramMiB)}: boot with ramMiB: ${BOOTED_SNAPSHOT_RAM_MIB}, or from: "scratch"`);
  }
  if (from === 'snapshot' && extraArgs.length > 0) bad('the booted snapshot was saved without extraArgs: boot with from: "scratch" to add QEMU arguments');
  const hasJit = JIT_GUESTS.includes(guest as GuestName);
  const accel = o.accel ?? (hasJit ? 'jit' : 'interpreter');
  if (typeof accel !== 'string' || !(ACCELS as readonly string[]).includes(accel)) {
    const hint = typeof accel === 'string' ? suggest(accel, ACCELS) : undefined;
    bad(`accel must be ${ACCELS.map((a) => `"${a}"`).join(' or ')}, got ${JSON.stringify(accel)}.${hint ? ` Did you mean "${hint}"?` : ''}`);
  }
  if (accel === 'jit' && !hasJit) {
    bad(`the ${guest} guest has no JIT yet (its QEMU is a 64-bit-pointer build, and the JIT handles 32-bit hosts only): use accel: "interpreter", or a guest with a JIT: ${JIT_GUESTS.join(', ')}`);
  }
  return { guest: guest as GuestName, ramMiB: ramMiB as number, build, bootTimeoutMs, extraArgs: [...extraArgs], from, accel: accel as Accel };
}
