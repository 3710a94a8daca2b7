/**
 * Seedable uniform random numbers for sampling. sfc32 (Chris Doty-Humphrey's Small Fast
 * Counting generator): passes PractRand to terabytes, 4 words of state, only 32-bit integer ops,
 * so it is fast in every JS engine and needs no `node:` import.
 * @module
 */

export interface Rng {
  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number;
}

function splitmix32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function sfc32(a: number, b: number, c: number, d: number): Rng {
  const rng = {
    next(): number {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      return (t >>> 0) / 4294967296;
    },
  };
  // The first outputs of sfc32 are correlated with the seed words; the reference warms it up.
  for (let i = 0; i < 15; i++) rng.next();
  return rng;
}

/**
 * Same seed, same sequence (on every platform). Seeds are integers of up to 53 bits, negative
 * ones included: the high word is mixed in, so seeds differing only above bit 31 still differ.
 * Without a seed the state comes from `crypto.getRandomValues`.
 */
export function createRng(seed?: number): Rng {
  if (seed === undefined) {
    const s = globalThis.crypto.getRandomValues(new Uint32Array(4));
    return sfc32(s[0], s[1], s[2], s[3]);
  }
  if (!Number.isFinite(seed)) throw new RangeError(`createRng: seed must be finite, got ${seed}`);
  const n = Math.trunc(seed);
  const lo = n % 4294967296 | 0;
  const hi = Math.floor(n / 4294967296) | 0;
  const g = splitmix32(lo);
  // The counter word carries the high bits, so (lo, hi) pairs map to distinct states.
  return sfc32(g(), g(), g(), (g() ^ hi) | 0);
}
