// Runs in Node: how the benchmark report writes numbers (report.ts and
// the sections' own report modules).
import type { Summary } from './stats';

export const ms = (v: number | null | undefined): string => (v == null || !Number.isFinite(v) ? '—' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`);
export const mib = (b: number | null | undefined): string => (b == null ? '—' : `${(b / 2 ** 20).toFixed(1)} MiB`);
export const x = (r: number | null): string => (r == null ? '—' : r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`);
export const cell = (s: Summary | null): string => (s ? `${ms(s.median)} (${ms(s.min)}–${ms(s.max)}, n=${s.n})` : '—');

export function met(v: number | null, ok: (v: number) => boolean): string {
  return v == null ? 'not measured' : ok(v) ? 'met' : 'not met';
}
