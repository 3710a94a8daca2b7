/**
 * Small vector helpers shared by the engine, the embedding handler and the ORT models.
 * @module
 */

/** A new vector scaled to unit length (a zero vector stays zero). */
export function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum) || 1;
  return v.map((x) => x / norm);
}

/** The mean of `rows` rows of `size` values (row-major), e.g. token embeddings -> one sentence vector. */
export function meanRows(data: Float32Array, rows: number, size: number): Float32Array {
  const mean = new Float32Array(size);
  for (let r = 0; r < rows; r++) for (let k = 0; k < size; k++) mean[k] += data[r * size + k];
  for (let k = 0; k < size; k++) mean[k] /= rows;
  return mean;
}

/** `parts` one after another in one new array. */
export function concatFloats(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}
