/**
 * KV-cache layout. Each layer's cache is one [B, H, capacity, D] buffer: a stored sequence has B = 1
 * and its `length` real positions first; a decode batch has its rows left-padded to a common
 * `padded` length (row r's real positions are [padded - length, padded), the padding before them
 * is masked out by the attention mask), or with `right` from position 0 (for graphs that read a
 * row's cache from the front: GroupQueryAttention's `seqlens_k`). Positions at and beyond the
 * real ones are room that a step may write in place (see OrtCausalLM's KV in place); without it
 * the capacity is exactly the length. These functions move rows in and out of that layout.
 * @module
 */

export type KvData = Float32Array | Uint16Array;

function alloc(like: KvData, size: number): KvData {
  return new (like.constructor as new (n: number) => KvData)(size);
}

/**
 * Positions [start, start + length) of row `row` of a [B, H, stride, D] buffer, as a new
 * [1, H, capacity, D] buffer (the positions first; `capacity` defaults to `length`).
 */
export function extractRow(data: KvData, heads: number, stride: number, dim: number, row: number, start: number, length: number, capacity = length): KvData {
  const out = alloc(data, heads * capacity * dim);
  for (let h = 0; h < heads; h++) {
    const from = ((row * heads + h) * stride + start) * dim;
    out.set(data.subarray(from, from + length * dim), h * capacity * dim);
  }
  return out;
}

/**
 * Stacks [1, H, strides[i], D] buffers (each with lengths[i] real positions first) into one
 * [B, H, capacity, D] buffer, left-padded (or `right`-padded) with zeros to `padded`, the longest
 * length; `capacity` defaults to `padded`. A lone row already in that layout is returned as is.
 */
export function stackRows(
  rows: KvData[], lengths: number[], strides: number[], heads: number, dim: number, capacity?: number, right = false,
): { data: KvData; padded: number } {
  const padded = Math.max(0, ...lengths);
  const room = capacity ?? padded;
  if (rows.length === 1 && strides[0] === room) return { data: rows[0], padded }; // same layout: no copy
  const data = alloc(rows[0], rows.length * heads * room * dim);
  rows.forEach((row, r) => {
    const length = lengths[r];
    for (let h = 0; h < heads; h++) {
      const to = ((r * heads + h) * room + (right ? 0 : padded - length)) * dim;
      data.set(row.subarray(h * strides[r] * dim, (h * strides[r] + length) * dim), to);
    }
  });
  return { data, padded };
}

/**
 * A [B, H, stride, D] buffer with every row's positions [0, used) kept at the same place, in a new
 * [B, H, capacity, D] buffer: the same batch with more room.
 */
export function widenRows(data: KvData, rows: number, heads: number, stride: number, dim: number, used: number, capacity: number): KvData {
  const out = alloc(data, rows * heads * capacity * dim);
  for (let c = 0; c < rows * heads; c++) out.set(data.subarray(c * stride * dim, (c * stride + used) * dim), c * capacity * dim);
  return out;
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
