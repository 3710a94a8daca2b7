import { describe, it, expect } from 'vitest';
import { argmax, argmaxAmong, sampleToken, type SampleParams } from './sample.js';
import { createRng, type Rng } from './rng.js';

const P = (o: Partial<SampleParams> = {}): SampleParams => ({ temperature: 1, topK: 0, topP: 1, minP: 0, ...o });
const fixed = (...us: number[]): Rng & { calls: number } => {
  const r = { calls: 0, next: () => us[r.calls++ % us.length] };
  return r;
};
const fromProbs = (ps: number[]) => Float32Array.from(ps, (p) => (p > 0 ? Math.log(p) : -Infinity));

// Straightforward reference: full sort, HF filter order, draw walking the kept tokens best first.
function reference(logits: Float32Array, p: SampleParams): (u: number) => number {
  const m = logits.reduce((a, b) => (b > a ? b : a), -Infinity);
  const w = Array.from(logits, (x) => (x > -Infinity ? Math.exp((x - m) / p.temperature) : 0));
  const total = w.reduce((a, b) => a + b, 0);
  const order = Array.from(logits.keys()).filter((i) => w[i] > 0).sort((a, b) => logits[b] - logits[a] || a - b);
  const filtered = (p.topK > 0 && p.topK < logits.length) || p.topP < 1;
  if (!filtered) return (u) => {
    let r = u * w.filter((x) => x >= p.minP).reduce((a, b) => a + b, 0);
    let last = -1;
    for (let i = 0; i < w.length; i++) if (w[i] > 0 && w[i] >= p.minP) { last = i; r -= w[i]; if (r < 0) return i; }
    return last;
  };
  let kept = p.topK > 0 ? order.slice(0, p.topK) : order;
  const ref = p.topK > 0 ? kept.reduce((a, i) => a + w[i], 0) : total;
  let cum = 0;
  let n = 0;
  for (const i of kept) {
    if (n > 0 && ((p.topP < 1 && cum >= p.topP * ref) || w[i] < p.minP)) break;
    cum += w[i];
    n++;
  }
  kept = kept.slice(0, n);
  return (u) => {
    let r = u * cum;
    for (const i of kept) { r -= w[i]; if (r < 0) return i; }
    return kept[kept.length - 1];
  };
}

describe('argmaxAmong', () => {
  it('is the argmax of the row with every id outside the bitset at -Infinity (ties to the lowest id)', () => {
    const rand = (() => { let a = 9; return () => ((a = (a * 1103515245 + 12345) >>> 0) / 2 ** 32); })();
    for (let k = 0; k < 200; k++) {
      const n = 1 + Math.floor(rand() * 100);
      const row = Float32Array.from({ length: n }, () => Math.floor(rand() * 8)); // many ties
      const allowed = new Uint32Array(Math.ceil(n / 32) + (k % 2)); // sometimes a word longer than the row
      for (let i = 0; i < allowed.length * 32; i++) if (rand() < 0.3) allowed[i >>> 5] |= 1 << (i & 31);
      const masked = row.map((v, i) => (((allowed[i >>> 5] >>> (i & 31)) & 1) === 1 ? v : -Infinity));
      expect(argmaxAmong(row, allowed)).toBe(argmax(masked));
    }
    expect(argmaxAmong(Float32Array.of(1, 2), new Uint32Array(1))).toBe(-1);
  });
});

describe('argmax', () => {
  it('breaks ties to the lowest id and ignores NaN', () => {
    expect(argmax(Float32Array.from([1, 3, 3, 2]))).toBe(1);
    expect(argmax(Float32Array.from([Number.NaN, -5, Number.NaN]))).toBe(1);
    expect(argmax(Float32Array.from([-Infinity, -Infinity]))).toBe(-1);
    expect(argmax(Float32Array.from([0, Infinity, Infinity]))).toBe(1);
  });
});

describe('sampleToken', () => {
  it('is greedy at temperature 0 and consumes no randomness', () => {
    const rng = fixed(0.99);
    expect(sampleToken(Float32Array.from([0.1, 2, 2, -1]), P({ temperature: 0, topK: 3 }), rng)).toBe(1);
    expect(rng.calls).toBe(0);
  });

  it('draws exactly once per call when sampling', () => {
    const rng = fixed(0.5);
    sampleToken(fromProbs([0.5, 0.5]), P(), rng);
    sampleToken(fromProbs([0.5, 0.5]), P({ topK: 1, topP: 0.5, minP: 0.1 }), rng);
    expect(rng.calls).toBe(2);
  });

  it('maps the uniform draw onto the cumulative distribution, after temperature', () => {
    const l = fromProbs([0.8, 0.2]); // at temperature 2 the weights are 1 : 0.5
    expect(sampleToken(l, P({ temperature: 2 }), fixed(0.666))).toBe(0);
    expect(sampleToken(l, P({ temperature: 2 }), fixed(0.667))).toBe(1);
    expect(sampleToken(l, P(), fixed(0.79))).toBe(0);
    expect(sampleToken(l, P(), fixed(0.81))).toBe(1);
  });

  it('follows the distribution (chi-square, fixed seed)', () => {
    const probs = [0.5, 0.25, 0.15, 0.1];
    const rng = createRng(2024);
    const counts = [0, 0, 0, 0];
    const n = 40_000;
    for (let i = 0; i < n; i++) counts[sampleToken(fromProbs(probs), P(), rng)]++;
    const chi2 = probs.reduce((s, p, i) => s + (counts[i] - n * p) ** 2 / (n * p), 0);
    expect(chi2).toBeLessThan(16.3); // df = 3, p = 0.001
  });

  it('top_k = 1 is greedy, ties to the lowest id', () => {
    const rng = createRng(5);
    for (let t = 0; t < 50; t++) {
      const l = Float32Array.from({ length: 300 }, () => Math.round(rng.next() * 20));
      expect(sampleToken(l, P({ topK: 1, temperature: 1.5 }), rng)).toBe(argmax(l));
    }
  });

  it('top_p keeps the shortest prefix reaching the mass: [0.23, 0.20, 0.18, 0.11, ...] at 0.6 keeps three', () => {
    const probs = [0.1, 0.23, 0.05, 0.2, 0.11, 0.18, 0.09, 0.04]; // shuffled so ids are not in rank order
    const l = fromProbs(probs);
    expect(sampleToken(l, P({ topP: 0.6 }), fixed(0))).toBe(1);
    expect(sampleToken(l, P({ topP: 0.6 }), fixed(0.23 / 0.61 + 1e-6))).toBe(3);
    expect(sampleToken(l, P({ topP: 0.6 }), fixed(0.999999))).toBe(5);
    expect(sampleToken(l, P({ topP: 0.62 }), fixed(0.999999))).toBe(4);
    expect(sampleToken(l, P({ topP: 1e-9 }), fixed(0.999999))).toBe(1);
    expect(sampleToken(l, P({ topP: 0 }), fixed(0.999999))).toBe(1);
  });

  it('top_p applies to the mass top_k kept', () => {
    const l = fromProbs([0.4, 0.3, 0.2, 0.1]);
    // top_k 2 renormalises to 4/7, 3/7: top_p 0.5 then keeps only the first.
    expect(sampleToken(l, P({ topK: 2, topP: 0.5 }), fixed(0.999))).toBe(0);
    expect(sampleToken(l, P({ topK: 2, topP: 0.6 }), fixed(0.999))).toBe(1);
    expect(sampleToken(l, P({ topK: 3 }), fixed(0.999))).toBe(2);
  });

  it('min_p drops tokens below min_p times the top probability', () => {
    const l = fromProbs([0.05, 0.5, 0.15, 0.3]);
    expect(sampleToken(l, P({ minP: 0.2 }), fixed(0.999))).toBe(3); // keeps 1, 2, 3 in id order
    expect(sampleToken(l, P({ minP: 0.31 }), fixed(0.999))).toBe(3); // keeps 1, 3
    expect(sampleToken(l, P({ minP: 0.2, topP: 0.99 }), fixed(0.999))).toBe(2); // best-first walk
    expect(sampleToken(l, P({ minP: 1 }), fixed(0.999))).toBe(1);
  });

  it('handles masked logits, huge top_k and degenerate inputs', () => {
    const l = Float32Array.from([-Infinity, -Infinity, 3, -Infinity]);
    for (const u of [0, 0.5, 0.999]) {
      expect(sampleToken(l, P(), fixed(u))).toBe(2);
      expect(sampleToken(l, P({ topK: 1000, topP: 0.3, minP: 0.5 }), fixed(u))).toBe(2);
    }
    expect(sampleToken(Float32Array.from([0, Infinity, 1]), P(), fixed(0.9))).toBe(1);
    expect(sampleToken(Float32Array.from([0, Number.NaN, 0]), P(), fixed(0.9))).toBe(2);
    expect(() => sampleToken(Float32Array.from([-Infinity, Number.NaN]), P(), fixed(0.5))).toThrow(RangeError);
    const flat = fromProbs([0.25, 0.25, 0.25, 0.25]);
    expect(sampleToken(flat, P({ topK: 2 }), fixed(0.99))).toBe(1);
  });

  it('matches a full-sort reference on large random vocabularies', () => {
    const rng = createRng(77);
    const configs: Array<Partial<SampleParams>> = [
      {}, { topK: 40 }, { topP: 0.9 }, { topP: 0.5, minP: 0.05 }, { topK: 50, topP: 0.8 },
      { minP: 0.1 }, { topK: 5, temperature: 0.3 }, { topP: 0.95, temperature: 2 }, { topK: 2000, topP: 0.97 },
    ];
    for (const [V, spread, quantum] of [[150_000, 12, 0], [2000, 3, 0.5], [50, 40, 1]] as const) {
      const l = Float32Array.from({ length: V }, () => {
        const x = (rng.next() - 0.5) * spread + (rng.next() < 0.001 ? 10 : 0);
        return quantum ? Math.round(x / quantum) * quantum : x;
      });
      for (const c of configs) {
        const ref = reference(l, P(c));
        for (const u of [0, 0.13, 0.5, 0.87, 0.9999]) {
          expect([V, c, u, sampleToken(l, P(c), fixed(u))]).toEqual([V, c, u, ref(u)]);
        }
      }
    }
  });
});
