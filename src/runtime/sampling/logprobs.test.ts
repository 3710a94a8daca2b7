import { describe, it, expect } from 'vitest';
import { logSumExp, tokenLogprobs, topIndices } from './logprobs.js';
import { createRng } from './rng.js';

describe('logSumExp', () => {
  it('is exact on small inputs and stable on large ones', () => {
    expect(logSumExp([0, Math.log(3)])).toBeCloseTo(Math.log(4), 12);
    expect(logSumExp([1000, 1000])).toBeCloseTo(1000 + Math.log(2), 9);
    expect(logSumExp([-Infinity, 2, Number.NaN])).toBe(2);
    expect(logSumExp([-Infinity, -Infinity])).toBe(-Infinity);
  });
});

describe('topIndices', () => {
  it('returns the n largest, descending, ties to the lower index, skipping -Infinity and NaN', () => {
    const v = [1, 5, -Infinity, 5, Number.NaN, 3, 5];
    expect(topIndices(v, 4)).toEqual([1, 3, 6, 5]);
    expect(topIndices(v, 100)).toEqual([1, 3, 6, 5, 0]);
    expect(topIndices(v, 0)).toEqual([]);
    expect(topIndices([], 3)).toEqual([]);
  });

  it('agrees with a full sort on random data with many ties', () => {
    const rng = createRng(9);
    const v = Float32Array.from({ length: 20_000 }, () => Math.round(rng.next() * 500));
    const ref = Array.from(v.keys()).sort((a, b) => v[b] - v[a] || a - b);
    for (const n of [1, 7, 64, 1000]) expect(topIndices(v, n)).toEqual(ref.slice(0, n));
  });
});

describe('tokenLogprobs', () => {
  it('gives exact log-softmax values', () => {
    const r = tokenLogprobs(Float32Array.from([0, Math.log(3), -Infinity]), 0, 2);
    expect(r.logprob).toBeCloseTo(Math.log(0.25), 6);
    expect(r.top.map((t) => t.token)).toEqual([1, 0]);
    expect(r.top[0].logprob).toBeCloseTo(Math.log(0.75), 6);
    expect(r.top[1].logprob).toBeCloseTo(Math.log(0.25), 6);
  });

  it('sums to one over the vocabulary, in descending order', () => {
    const rng = createRng(3);
    const logits = Float32Array.from({ length: 5000 }, () => (rng.next() - 0.5) * 40);
    const r = tokenLogprobs(logits, 17, logits.length);
    expect(r.top.length).toBe(logits.length);
    const sum = r.top.reduce((s, t) => s + Math.exp(t.logprob), 0);
    expect(sum).toBeCloseTo(1, 9);
    for (let i = 1; i < r.top.length; i++) expect(r.top[i].logprob).toBeLessThanOrEqual(r.top[i - 1].logprob);
    expect(r.top.find((t) => t.token === 17)?.logprob).toBe(r.logprob);
  });

  it('does not overflow on large logits and rejects tokens outside the vocabulary', () => {
    const r = tokenLogprobs(Float32Array.from([1e4, 1e4]), 1, 1);
    expect(r.logprob).toBeCloseTo(-Math.LN2, 9);
    expect(r.top).toEqual([{ token: 0, logprob: r.logprob }]);
    expect(() => tokenLogprobs(Float32Array.from([0]), 1, 1)).toThrow(RangeError);
  });
});
