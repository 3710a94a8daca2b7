import { describe, it, expect } from 'vitest';
import { createRng } from './rng.js';

const take = (seed: number | undefined, n: number) => {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng.next());
};

describe('createRng', () => {
  it('matches an independent sfc32/splitmix32 reference', () => {
    // Values from a Python re-implementation of the same generator.
    expect(take(42, 3)).toEqual([0.19866962218657136, 0.44710162095725536, 0.8355816230177879]);
    expect(take(0, 3)).toEqual([0.7095207434613258, 0.09012765903025866, 0.5834812228567898]);
    expect(take(-1, 3)).toEqual([0.6572192227467895, 0.20381264621391892, 0.3344017807394266]);
    expect(take(2 ** 32 + 42, 3)).toEqual([0.643233090871945, 0.9410933891776949, 0.4701442315708846]);
  });

  it('is reproducible for a seed and differs between seeds', () => {
    expect(take(123, 1000)).toEqual(take(123, 1000));
    expect(take(123, 10)).not.toEqual(take(124, 10));
    // Seeds that differ only above bit 31 still give different streams.
    expect(take(7, 10)).not.toEqual(take(7 + 2 ** 32, 10));
    // Fractional seeds are truncated.
    expect(take(5.9, 5)).toEqual(take(5, 5));
  });

  it('seeds itself randomly without a seed', () => {
    expect(take(undefined, 4)).not.toEqual(take(undefined, 4));
  });

  it('stays in [0, 1) and is roughly uniform', () => {
    const rng = createRng(1);
    const bins = new Array<number>(10).fill(0);
    const n = 100_000;
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.next();
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
      bins[Math.floor(x * 10)]++;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    const chi2 = bins.reduce((s, c) => s + (c - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(27.9); // df = 9, p = 0.001
  });

  it('rejects non-finite seeds', () => {
    expect(() => createRng(Number.NaN)).toThrow(RangeError);
    expect(() => createRng(Infinity)).toThrow(RangeError);
  });
});
