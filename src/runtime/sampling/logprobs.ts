/**
 * Log-probabilities of one step, and partial top-n selection shared with beam search.
 * @module
 */

/** `log(sum(exp(x)))` in float64, shifted by the max so large logits cannot overflow. -Infinity and NaN entries count as zero mass. */
export function logSumExp(logits: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  if (m === -Infinity || m === Infinity) return m;
  let s = 0;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (x > -Infinity) s += Math.exp(x - m);
  }
  return m + Math.log(s);
}

// `a` ranks below `b`: smaller value, or equal value and larger index.
function worse(v: ArrayLike<number>, a: number, b: number): boolean {
  return v[a] < v[b] || (v[a] === v[b] && a > b);
}

/**
 * Indices of the `n` largest values, largest first, ties to the lower index. -Infinity and NaN
 * never qualify, so fewer than `n` come back when fewer are finite. A bounded min-heap:
 * O(V log n) worst case, close to O(V) in practice because most values lose to the root at once.
 */
export function topIndices(values: ArrayLike<number>, n: number): number[] {
  const k = Math.min(Math.floor(n), values.length);
  if (!(k > 0)) return [];
  const heap = new Int32Array(k);
  let size = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!(x > -Infinity)) continue;
    if (size < k) {
      // sift up
      let pos = size++;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!worse(values, i, heap[parent])) break;
        heap[pos] = heap[parent];
        pos = parent;
      }
      heap[pos] = i;
    } else if (x > values[heap[0]]) {
      // sift down from the root; an equal value loses to the root's lower index
      let pos = 0;
      for (;;) {
        let c = 2 * pos + 1;
        if (c >= k) break;
        if (c + 1 < k && worse(values, heap[c + 1], heap[c])) c++;
        if (!worse(values, heap[c], i)) break;
        heap[pos] = heap[c];
        pos = c;
      }
      heap[pos] = i;
    }
  }
  return Array.from(heap.subarray(0, size)).sort((a, b) => (worse(values, a, b) ? 1 : worse(values, b, a) ? -1 : 0));
}

export interface TokenLogprobs {
  logprob: number;
  top: Array<{ token: number; logprob: number }>;
}

/** Log-softmax of the raw logits at `token`, plus the `topN` most likely tokens, most likely first. */
export function tokenLogprobs(logits: Float32Array, token: number, topN: number): TokenLogprobs {
  if (!(Number.isInteger(token) && token >= 0 && token < logits.length)) {
    throw new RangeError(`tokenLogprobs: token ${token} outside vocabulary of ${logits.length}`);
  }
  const lse = logSumExp(logits);
  return {
    logprob: logits[token] - lse,
    top: topIndices(logits, topN).map((t) => ({ token: t, logprob: logits[t] - lse })),
  };
}
