import { describe, expect, it } from 'vitest';
import { extractRow, leftPaddedMask, rightPaddedMask, stackRows, widenRows } from './kv-layout.js';

/** A [1, H, capacity, D] buffer whose first `length` positions encode (seq, head, position, dim), so misplaced copies show. */
function rowOf(seq: number, heads: number, length: number, dim: number, capacity = length): Float32Array {
  const out = new Float32Array(heads * capacity * dim);
  for (let h = 0; h < heads; h++) for (let p = 0; p < length; p++) for (let d = 0; d < dim; d++) {
    out[(h * capacity + p) * dim + d] = seq * 1000 + h * 100 + p * 10 + d;
  }
  return out;
}

describe('kv layout', () => {
  const heads = 2;
  const dim = 3;
  const lengths = [4, 1, 6];
  const rows = lengths.map((length, seq) => rowOf(seq + 1, heads, length, dim));
  const start = (padded: number, length: number, right = false) => (right ? 0 : padded - length);

  it('stacks rows left-padded to the longest and extracts them back unchanged', () => {
    const { data, padded } = stackRows(rows, lengths, lengths, heads, dim);
    expect(padded).toBe(6);
    expect(data).toHaveLength(3 * heads * 6 * dim);
    lengths.forEach((length, r) => expect(Array.from(extractRow(data, heads, padded, dim, r, start(padded, length), length))).toEqual(Array.from(rows[r])));
  });

  it('puts zeros in the padding, before the real positions', () => {
    const { data, padded } = stackRows(rows, lengths, lengths, heads, dim);
    // Row 1 (length 1), head 0: positions 0..4 are padding, position 5 holds its only entry.
    const head0 = data.subarray((1 * heads + 0) * padded * dim, (1 * heads + 1) * padded * dim);
    expect(Array.from(head0.subarray(0, 5 * dim))).toEqual(new Array(5 * dim).fill(0));
    expect(Array.from(head0.subarray(5 * dim))).toEqual([2000, 2001, 2002]);
  });

  it('keeps the element type (float16 caches are Uint16Array)', () => {
    const half = [Uint16Array.from([1, 2, 3, 4, 5, 6]), Uint16Array.from([7, 8, 9, 10, 11, 12])];
    const { data, padded } = stackRows(half, [1, 1], [1, 1], 2, 3);
    expect(data).toBeInstanceOf(Uint16Array);
    expect(Array.from(extractRow(data, 2, padded, 3, 1, 0, 1))).toEqual([7, 8, 9, 10, 11, 12]);
  });

  it('extracts a row that has grown past its stacked length (decode appends at the end)', () => {
    // After one decode step the batch is [B, H, P + 1, D] and every row is one longer.
    const grown = stackRows(lengths.map((l, i) => rowOf(i + 1, heads, l + 1, dim)), lengths.map((l) => l + 1), lengths.map((l) => l + 1), heads, dim);
    expect(Array.from(extractRow(grown.data, heads, grown.padded, dim, 0, start(grown.padded, 5), 5))).toEqual(Array.from(rowOf(1, heads, 5, dim)));
  });

  it('masks the padding and opens the real and new positions', () => {
    expect(Array.from(leftPaddedMask([2, 0, 3], 3, 1), Number)).toEqual([0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1]);
  });

  it('right-padded: rows from position 0, zeros after, extracted back unchanged, also after a step', () => {
    const { data, padded } = stackRows(rows, lengths, lengths, heads, dim, undefined, true);
    const head0 = data.subarray((1 * heads + 0) * padded * dim, (1 * heads + 1) * padded * dim);
    expect(Array.from(head0.subarray(0, dim))).toEqual([2000, 2001, 2002]);
    expect(Array.from(head0.subarray(dim))).toEqual(new Array(5 * dim).fill(0));
    lengths.forEach((length, r) => expect(Array.from(extractRow(data, heads, padded, dim, r, 0, length))).toEqual(Array.from(rows[r])));
    // A step writes each row's new position right after its last one (GroupQueryAttention's seqlens_k).
    const grown = stackRows(lengths.map((l, i) => rowOf(i + 1, heads, l + 1, dim)), lengths.map((l) => l + 1), lengths.map((l) => l + 1), heads, dim, undefined, true);
    expect(Array.from(extractRow(grown.data, heads, grown.padded, dim, 1, 0, 2))).toEqual(Array.from(rowOf(2, heads, 2, dim)));
  });

  it('right-padded mask: each row sums to its length plus the new tokens', () => {
    expect(Array.from(rightPaddedMask([2, 0, 3], 3, 1), Number)).toEqual([1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('cuts a row to its first positions, per head, into a buffer of any capacity', () => {
    expect(Array.from(extractRow(rowOf(1, heads, 4, dim), heads, 4, dim, 0, 0, 2))).toEqual(Array.from(rowOf(1, heads, 2, dim)));
    expect(Array.from(extractRow(rowOf(1, heads, 4, dim), heads, 4, dim, 0, 0, 2, 5))).toEqual(Array.from(rowOf(1, heads, 2, dim, 5)));
  });

  it('reads rows with room beyond their length (buffers written in place) and stacks them with room', () => {
    const roomy = lengths.map((length, seq) => rowOf(seq + 1, heads, length, dim, length + 3));
    const { data, padded } = stackRows(roomy, lengths, lengths.map((l) => l + 3), heads, dim, 8);
    expect(padded).toBe(6);
    expect(data).toHaveLength(3 * heads * 8 * dim);
    lengths.forEach((length, r) => expect(Array.from(extractRow(data, heads, 8, dim, r, start(padded, length), length))).toEqual(Array.from(rows[r])));
    // the room after `padded` is zero
    expect(Array.from(data.subarray(6 * dim, 8 * dim))).toEqual(new Array(2 * dim).fill(0));
  });

  it('widens a batch: every row keeps its used positions where they were', () => {
    const { data, padded } = stackRows(rows, lengths, lengths, heads, dim);
    const wide = widenRows(data, 3, heads, padded, dim, padded, 10);
    expect(wide).toHaveLength(3 * heads * 10 * dim);
    lengths.forEach((length, r) => expect(Array.from(extractRow(wide, heads, 10, dim, r, start(padded, length), length))).toEqual(Array.from(rows[r])));
  });

  it('moves a lone row in and out of a batch of one without copying it', () => {
    const row = rowOf(1, heads, 4, dim, 6);
    const { data, padded } = stackRows([row], [4], [6], heads, dim, 6);
    expect(data).toBe(row);
    expect(padded).toBe(4);
  });
});
