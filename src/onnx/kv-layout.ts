/**
 * KV-cache layout for batched decoding. A batch keeps each layer's cache as one [B, H, P, D]
 * buffer, left-padded: row r's `lengths[r]` real positions are the last ones, the padding before
 * them is masked out by the attention mask. These functions move rows in and out of that layout.
 * With `right`, rows start at position 0 and the padding follows them, for graphs that read a
 * row's cache from the front (GroupQueryAttention's `seqlens_k`).
 * @module
 */

export type KvData = Float32Array | Uint16Array;

/**
 * Row `row` of a left-padded [B, H, P, D] buffer, unpadded, as a [1, H, length, D] buffer.
 * A single unpadded row already has that layout and is returned as is: cache buffers are never
 * written after they are made, so sharing one is safe.
 */
export function extractRow(data: KvData, heads: number, padded: number, dim: number, row: number, length: number, right = false): KvData {
  if (length === padded && data.length === heads * length * dim) return data;
  const out = new (data.constructor as new (n: number) => KvData)(heads * length * dim);
  for (let h = 0; h < heads; h++) {
    const from = ((row * heads + h) * padded + (right ? 0 : padded - length)) * dim;
    out.set(data.subarray(from, from + length * dim), h * length * dim);
  }
  return out;
}

/** Stacks [1, H, L_i, D] buffers into one [B, H, max L, D] buffer, left-padded (or `right`-padded) with zeros. */
export function stackRows(rows: KvData[], lengths: number[], heads: number, dim: number, right = false): { data: KvData; padded: number } {
  if (rows.length === 1) return { data: rows[0], padded: lengths[0] }; // same layout: no copy
  const padded = Math.max(0, ...lengths);
  const data = new (rows[0].constructor as new (n: number) => KvData)(rows.length * heads * padded * dim);
  rows.forEach((row, r) => {
    const length = lengths[r];
    for (let h = 0; h < heads; h++) {
      const to = ((r * heads + h) * padded + (right ? 0 : padded - length)) * dim;
      data.set(row.subarray(h * length * dim, (h + 1) * length * dim), to);
    }
  });
  return { data, padded };
}

/** Attention mask [B, padded + newTokens]: zeros over each row's padding, ones over its real positions. */
export function leftPaddedMask(lengths: number[], padded: number, newTokens: number): BigInt64Array {
  const width = padded + newTokens;
  const mask = new BigInt64Array(lengths.length * width);
  lengths.forEach((length, r) => mask.fill(1n, r * width + (padded - length), (r + 1) * width));
  return mask;
}

/**
 * Attention mask [B, padded + newTokens] for a right-padded batch: ones over each row's real and
 * new positions from the front. Graphs that want this layout read only the row sums (each row's
 * length) and the width (the buffer they write).
 */
export function rightPaddedMask(lengths: number[], padded: number, newTokens: number): BigInt64Array {
  const width = padded + newTokens;
  const mask = new BigInt64Array(lengths.length * width);
  lengths.forEach((length, r) => mask.fill(1n, r * width, r * width + length + newTokens));
  return mask;
}

/** The first `length` positions of a [1, H, L, D] buffer, as a new [1, H, length, D] buffer. */
export function truncateRow(data: KvData, heads: number, current: number, dim: number, length: number): KvData {
  const out = new (data.constructor as new (n: number) => KvData)(heads * length * dim);
  for (let h = 0; h < heads; h++) out.set(data.subarray(h * current * dim, (h * current + length) * dim), h * length * dim);
  return out;
}
