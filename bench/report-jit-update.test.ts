import { describe, expect, it } from 'vitest';
import { pairedDiffs } from './report-jit-update';

describe('pairedDiffs', () => {
  it('pairs the i-th samples and summarizes their differences', () => {
    const d = pairedDiffs([310, 250, 400, 300], [300, 270, 330, 300]);
    // differences: +10, -20, +70, 0 → sorted -20, 0, 10, 70
    expect(d).toEqual({ n: 4, median: 5, q1: -5, q3: 25, jitLonger: 2 });
  });

  it('uses only the rounds both engines finished', () => {
    expect(pairedDiffs([100, 200, 300], [90])).toEqual({ n: 1, median: 10, q1: 10, q3: 10, jitLonger: 1 });
  });

  it('has nothing to say without a pair', () => {
    expect(pairedDiffs([], [1, 2])).toBeNull();
  });
});
