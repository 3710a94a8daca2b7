/**
 * Small vector helpers shared by the engine, the embedding handler and the Node embedder.
 * @module
 */

/** A new vector scaled to unit length (a zero vector stays zero). */
export function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum) || 1;
  return v.map((x) => x / norm);
}
