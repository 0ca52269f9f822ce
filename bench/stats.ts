// Runs in Node: summary statistics for the benchmark tables.

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p95: number;
  /** (max - min) / median: the spread the tables print, 0 when n < 2. */
  spread: number;
}

/** The q-quantile by linear interpolation between the two closest ranks. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function summarize(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const median = quantile(s, 0.5);
  return {
    n: s.length,
    median,
    min: s[0]!,
    max: s[s.length - 1]!,
    p95: quantile(s, 0.95),
    spread: s.length > 1 && median > 0 ? (s[s.length - 1]! - s[0]!) / median : 0,
  };
}

/** a / b, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}
