import { describe, expect, it } from 'vitest';
import { concatBytes } from './bytes.js';

describe('concatBytes', () => {
  it('joins chunks in order, returns a single chunk as it is, and gives an empty array for none', () => {
    expect(Array.from(concatBytes([Uint8Array.of(1, 2), Uint8Array.of(), Uint8Array.of(3)], 3))).toEqual([1, 2, 3]);
    const one = Uint8Array.of(7);
    expect(concatBytes([one], 1)).toBe(one);
    expect(concatBytes([], 0)).toEqual(new Uint8Array(0));
  });
});
