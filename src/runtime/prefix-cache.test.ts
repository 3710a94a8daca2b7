import { describe, expect, it } from 'vitest';
import { PrefixCache } from './prefix-cache.js';

function cache(budgetTokens = 100) {
  const released: number[] = [];
  return { released, cache: new PrefixCache((seq) => released.push(seq), budgetTokens * 10, 10) };
}

describe('PrefixCache', () => {
  it('finds the longest shared prefix, leaving one token to forward', () => {
    const { cache: c } = cache();
    c.insert(1, [1, 2, 3, 4]);
    c.insert(2, [1, 2, 9]);
    expect(c.lookup([1, 2, 3, 4, 5])).toMatchObject({ entry: { seq: 1 }, length: 4 });
    // The whole prompt is cached: reuse all but the last token, whose logits are needed.
    expect(c.lookup([1, 2, 3, 4])).toMatchObject({ entry: { seq: 1 }, length: 3 });
    expect(c.lookup([1, 2, 9, 9])).toMatchObject({ entry: { seq: 2 }, length: 3 });
  });

  it('leaves two tokens to forward when asked to (models that quantize activations)', () => {
    const c = new PrefixCache(() => {}, 1000, 10, 2);
    c.insert(1, [1, 2, 3, 4]);
    expect(c.lookup([1, 2, 3, 4])).toMatchObject({ entry: { seq: 1 }, length: 2 });
    expect(c.lookup([1, 2, 3, 4, 5])).toMatchObject({ entry: { seq: 1 }, length: 3 });
    expect(c.lookup([1, 2, 3, 4, 5, 6])).toMatchObject({ entry: { seq: 1 }, length: 4 });
  });

  it('ignores matches shorter than two tokens', () => {
    const { cache: c } = cache();
    c.insert(1, [1, 2, 3]);
    expect(c.lookup([1, 5, 6])).toBeUndefined();
    expect(c.lookup([7, 8])).toBeUndefined();
  });

  it("prefers the owner's entry on a tie", () => {
    const { cache: c } = cache();
    c.insert(1, [1, 2, 3], 'a');
    c.insert(2, [1, 2, 3], 'b');
    expect(c.lookup([1, 2, 3, 4], 'a')?.entry.seq).toBe(1);
    expect(c.lookup([1, 2, 3, 4], 'b')?.entry.seq).toBe(2);
  });

  it('evicts the least recently used entries beyond the byte budget and releases them', () => {
    const { cache: c, released } = cache(10);
    c.insert(1, [1, 2, 3, 4]);
    c.insert(2, [5, 6, 7, 8]);
    c.lookup([1, 2, 3, 4, 9]); // seq 1 is now the most recently used
    c.insert(3, [9, 9, 9, 9]);
    expect(released).toEqual([2]);
    expect(c.bytes).toBe(80);
    c.insert(4, new Array(11).fill(1));
    expect(released).toEqual([2, 1, 3, 4]); // alone larger than the budget: not kept either
    expect(c.size).toBe(0);
  });

  it("replaces an owner's entry, and drop / take / clear keep the books straight", () => {
    const { cache: c, released } = cache();
    c.insert(1, [1, 2, 3], 's');
    c.insert(2, [1, 2, 3, 4], 's');
    expect(released).toEqual([1]);
    const hit = c.lookup([1, 2, 3, 4, 5], 's')!;
    c.take(hit.entry);
    expect(c.size).toBe(0);
    expect(released).toEqual([1]); // taken, not released: the caller owns seq 2 now
    c.insert(3, [4, 5], 't');
    c.drop('t');
    c.insert(4, [6, 7]);
    c.clear();
    expect(released).toEqual([1, 3, 4]);
  });
});
