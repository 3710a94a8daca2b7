/**
 * Next-token selection: greedy, or temperature sampling with top-k / top-p / min-p, in O(V)
 * plus O(m log m) for the m tokens kept, never sorting the vocabulary.
 * @module
 */

import type { Rng } from './rng.js';

export interface SampleParams {
  /** 0 (or less) means greedy. */
  temperature: number;
  /** 0 means off. */
  topK: number;
  /** 1 means off. */
  topP: number;
  /** 0 means off; relative to the most likely token's probability. */
  minP: number;
}

// Scratch space reused across calls: sampling is synchronous and single-threaded per realm.
let weights = new Float64Array(0);
let heap = new Int32Array(0);
// Buckets of quarter-nat width in log relative weight; the last one takes everything below e^-63.75.
const NB = 256;
const bucketMass = new Float64Array(NB);
const bucketCount = new Uint32Array(NB);

function bucketOf(z: number): number {
  return z > -63.75 ? Math.floor(-z * 4) : NB - 1;
}

/** Index of the largest logit, ties to the lowest id; -1 when none is above -Infinity (NaN never wins). */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestV) {
      bestV = logits[i];
      best = i;
    }
  }
  return best;
}

/** Index of the largest logit among the ids set in `allowed` (a bitset over ids), ties to the lowest id; -1 when none is above -Infinity. */
export function argmaxAmong(logits: ArrayLike<number>, allowed: Uint32Array): number {
  let best = -1;
  let bestV = -Infinity;
  const words = Math.min(allowed.length, (logits.length + 31) >>> 5);
  for (let w = 0; w < words; w++) {
    let bits = allowed[w];
    while (bits !== 0) {
      const low = bits & -bits;
      const i = w * 32 + (31 - Math.clz32(low));
      bits ^= low;
      if (i < logits.length && logits[i] > bestV) {
        bestV = logits[i];
        best = i;
      }
    }
  }
  return best;
}

// Heap order: larger logit first, equal logits by lower id (the same tie rule as argmax).
function before(x: Float32Array, a: number, b: number): boolean {
  return x[a] > x[b] || (x[a] === x[b] && a < b);
}

function siftDown(x: Float32Array, h: Int32Array, size: number, pos: number): void {
  const item = h[pos];
  for (;;) {
    let c = 2 * pos + 1;
    if (c >= size) break;
    if (c + 1 < size && before(x, h[c + 1], h[c])) c++;
    if (!before(x, h[c], item)) break;
    h[pos] = h[c];
    pos = c;
  }
  h[pos] = item;
}

/**
 * Picks the next token. Filters follow Hugging Face's order (temperature, top_k, top_p, min_p):
 * top_k keeps exactly k tokens (ties to lower ids), top_p keeps the shortest most-likely prefix
 * whose mass reaches top_p of what top_k left (always at least one token), min_p drops tokens
 * below min_p times the top probability. Consumes exactly one `rng.next()` unless greedy.
 * Throws when every logit is -Infinity or NaN.
 */
export function sampleToken(logits: Float32Array, p: SampleParams, rng: Rng): number {
  const top = argmax(logits);
  if (top < 0) throw new RangeError('sampleToken: every logit is -Infinity or NaN');
  const m = logits[top];
  if (!(p.temperature > 0) || m === Infinity) return top;

  const V = logits.length;
  const invT = 1 / p.temperature;
  const k = p.topK > 0 && p.topK < V ? Math.floor(p.topK) : 0;
  const topP = p.topP < 1 ? Math.max(p.topP, 0) : 1;
  const minP = p.minP > 0 ? Math.min(p.minP, 1) : 0;
  const filtered = k > 0 || topP < 1;
  if (weights.length < V) weights = new Float64Array(V);
  const w = weights;
  if (filtered) {
    bucketMass.fill(0);
    bucketCount.fill(0);
  }
  // Weights relative to the top token (which has weight 1), so min_p is simply `w >= minP`.
  // top_k needs only the mass of its k tokens: the exp of everything else is skipped.
  const needTotal = k === 0;
  let total = 0;
  let passing = 0;
  for (let i = 0; i < V; i++) {
    const z = (logits[i] - m) * invT;
    if (!(z > -Infinity)) {
      w[i] = 0;
    } else if (needTotal) {
      const wi = Math.exp(z);
      w[i] = wi;
      total += wi;
      if (wi >= minP) passing += wi;
      if (filtered && wi > 0) {
        const b = bucketOf(z);
        bucketMass[b] += wi;
        bucketCount[b]++;
      }
    } else {
      w[i] = 1; // a marker; the candidates get their weight below
      bucketCount[bucketOf(z)]++;
    }
  }
  const u = rng.next();

  if (!filtered) {
    let r = u * passing;
    let last = top;
    for (let i = 0; i < V; i++) {
      const wi = w[i];
      if (wi > 0 && wi >= minP) {
        last = i;
        r -= wi;
        if (r < 0) return i;
      }
    }
    return last; // rounding left a sliver of mass past the end
  }

  // Buckets are monotone in the logit, so the first buckets that hold k tokens (or top_p of the
  // mass) contain every token the filters can keep; only those enter the heap.
  let B = NB - 1;
  let acc = 0;
  const need = k > 0 ? k : topP * total;
  for (let b = 0; b < NB; b++) {
    acc += k > 0 ? bucketCount[b] : bucketMass[b];
    if (acc >= need) {
      B = b;
      break;
    }
  }
  if (heap.length < V) heap = new Int32Array(V);
  const h = heap;
  let n = 0;
  for (let i = 0; i < V; i++) {
    if (!(w[i] > 0)) continue;
    const z = (logits[i] - m) * invT;
    if (B < NB - 1 && bucketOf(z) > B) continue;
    if (!needTotal && (w[i] = Math.exp(z)) === 0) continue;
    h[n++] = i;
  }
  for (let j = (n >> 1) - 1; j >= 0; j--) siftDown(logits, h, n, j);

  // Popping moves the root to the end of the heap, so h[n-1], h[n-2], ... is descending order.
  let size = n;
  const pop = (): void => {
    size--;
    const t = h[0];
    h[0] = h[size];
    h[size] = t;
    siftDown(logits, h, size, 0);
  };
  let ref = total;
  let end = 0;
  if (k > 0) {
    // top_p is relative to the mass top_k kept, so all k must be known first.
    end = Math.max(n - k, 0);
    ref = 0;
    while (size > end) {
      pop();
      ref += w[h[size]];
    }
  }
  const target = topP < 1 ? topP * ref : Infinity;
  let cum = 0;
  let j = n - 1;
  for (; j >= end; j--) {
    if (j < size) pop();
    const wi = w[h[j]];
    if (j < n - 1 && (cum >= target || wi < minP)) break;
    cum += wi;
  }
  // Kept: h[j+1 .. n-1], total weight `cum`.
  let r = u * cum;
  for (let q = n - 1; q > j; q--) {
    r -= w[h[q]];
    if (r < 0) return h[q];
  }
  return h[j + 1];
}
