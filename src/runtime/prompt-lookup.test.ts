import { describe, expect, it } from 'vitest';
import { DraftCosts, DraftGate, findDraft, lookupRefusal, mayDraftNext } from './prompt-lookup.js';

describe('findDraft', () => {
  it('copies what followed the latest earlier occurrence of the last n tokens', () => {
    // ... 7 8 9 [10 11] ... 7 8 9 -> the trigram 7 8 9 was followed by 10 11 12
    const history = [1, 7, 8, 9, 10, 11, 12, 2, 3, 7, 8, 9];
    expect(findDraft(history, { maxDraft: 3 })).toEqual([10, 11, 12]);
    expect(findDraft(history, { maxDraft: 2 })).toEqual([10, 11]);
  });

  it('prefers the longest n-gram, then the latest occurrence', () => {
    // bigram "8 9" occurs at 1 (followed by 5) and at 5 (followed by 6); trigram "7 8 9" only at 0 (followed by 5)
    const history = [7, 8, 9, 5, 3, 8, 9, 6, 7, 8, 9];
    expect(findDraft(history, { maxDraft: 1 })).toEqual([5]);
    // with trigrams off, the latest bigram wins
    expect(findDraft(history, { maxDraft: 1, maxNgram: 2 })).toEqual([6]);
  });

  it('falls back to shorter n-grams down to minNgram, and finds nothing below it', () => {
    const history = [4, 5, 6, 1, 2, 9, 5];
    // only the unigram 5 matches (at 1, followed by 6)
    expect(findDraft(history, { maxDraft: 2 })).toEqual([]);
    expect(findDraft(history, { maxDraft: 2, minNgram: 1 })).toEqual([6, 1]);
  });

  it('continues a repeating pattern past the end of the text (an LZ77-style copy)', () => {
    const history = [1, 2, 3, 1, 2, 3, 1, 2];
    // "1 2" at 3 (latest before the suffix) -> 3, then 1 2 (the suffix), then the draft's own 3, 1
    expect(findDraft(history, { maxDraft: 6 })).toEqual([3, 1, 2, 3, 1, 2]);
    // a run of one token
    expect(findDraft([5, 5, 5], { maxDraft: 4 })).toEqual([5, 5, 5, 5]);
  });

  it('drafts nothing for a short or unique history, or with maxDraft 0', () => {
    expect(findDraft([], { maxDraft: 4 })).toEqual([]);
    expect(findDraft([1], { maxDraft: 4, minNgram: 1 })).toEqual([]);
    expect(findDraft([1, 2, 3, 4, 5], { maxDraft: 4, minNgram: 1 })).toEqual([]);
    expect(findDraft([1, 2, 1, 2], { maxDraft: 0 })).toEqual([]);
  });

  it('never matches the suffix with itself', () => {
    // the bigram 3 4 occurs only at the end
    expect(findDraft([1, 2, 3, 4], { maxDraft: 2 })).toEqual([]);
  });
});

describe('mayDraftNext', () => {
  it('is true exactly when some next token could give a draft', () => {
    const options = { maxDraft: 4 }; // bigrams and trigrams
    // the last token 9 occurred before (followed by 1): the next token 1 would match "9 1"
    const history = [9, 1, 2, 9];
    expect(mayDraftNext(history, options)).toBe(true);
    expect(findDraft([...history, 1], options)).toEqual([2, 9, 1, 2]);
    // the last token is new: no bigram ending in the next token can have occurred
    const fresh = [9, 1, 2, 7];
    expect(mayDraftNext(fresh, options)).toBe(false);
    for (let t = 0; t < 12; t++) expect(findDraft([...fresh, t], options)).toEqual([]);
  });

  it('is always true with unigrams, and false when drafting is off', () => {
    expect(mayDraftNext([1, 2, 3], { maxDraft: 2, minNgram: 1 })).toBe(true);
    expect(mayDraftNext([1, 2, 1], { maxDraft: 0 })).toBe(false);
    expect(mayDraftNext([], { maxDraft: 2 })).toBe(false);
  });
});

describe('DraftCosts', () => {
  it('is the ratio of the running averages of drafted and plain step times', () => {
    const costs = new DraftCosts();
    expect(costs.ratio).toBe(1); // nothing known: try a draft
    costs.observe(true, 40);
    expect(costs.ratio).toBe(Number.POSITIVE_INFINITY); // no plain step timed yet: drafts do not count as paying
    costs.observe(false, 20);
    expect(costs.ratio).toBe(2);
    for (let i = 0; i < 100; i++) costs.observe(false, 10);
    expect(costs.ratio).toBeCloseTo(4, 1);
    costs.observe(false, Number.NaN); // ignored
    expect(costs.ratio).toBeCloseTo(4, 1);
  });
});

describe('DraftGate', () => {
  it('drafts while drafts bring more tokens per step than they cost', () => {
    const gate = new DraftGate(4);
    expect(gate.wouldDraft(3)).toBe(true); // optimistic at first: 5 tokens per draft
    for (let i = 0; i < 10; i++) gate.record(5, 3);
    expect(gate.wouldDraft(3)).toBe(true);
  });

  it('backs off exponentially after drafts that do not pay, and tries again', () => {
    const gate = new DraftGate(4);
    const pattern: boolean[] = [];
    for (let chance = 0; chance < 40; chance++) {
      const draft = gate.wouldDraft(2.5);
      pattern.push(draft);
      if (draft) gate.record(1, 2.5); // every draft rejected
      else gate.skip();
    }
    // the first drafts run on the optimistic start (the backoff doubling meanwhile), then 4, 8, 16 chances are skipped between tries
    const tries = pattern.flatMap((d, i) => (d ? [i] : []));
    const gaps = tries.slice(1).map((t, i) => t - tries[i] - 1);
    expect(gaps).toEqual([0, 0, 4, 8, 16]);
  });

  it('resumes drafting at once after a draft that paid', () => {
    const gate = new DraftGate(4);
    for (let i = 0; i < 6; i++) gate.record(1, 2);
    expect(gate.wouldDraft(2)).toBe(false);
    for (let i = 0; i < 64 && !gate.wouldDraft(2); i++) gate.skip();
    gate.record(5, 2); // a probe that paid
    expect(gate.wouldDraft(2)).toBe(true);
  });
});

describe('lookupRefusal', () => {
  const info = { vocabSize: 10, contextLength: 64, hiddenSize: 8 };
  it('allows float graphs, and int8 ones only when multi-token steps were shown row-invariant', () => {
    expect(lookupRefusal(info)).toBeUndefined();
    expect(lookupRefusal({ ...info, quantizedActivations: true })).toMatch(/int8 activations, and its multi-token steps round differently/);
    expect(lookupRefusal({ ...info, quantizedActivations: true, rowInvariant: true })).toBeUndefined();
    // an exact GGUF: float body, int8 only in the tied LM head
    expect(lookupRefusal({ ...info, quantizedActivations: true }, true)).toBeUndefined();
  });
  it('refuses graphs whose activation scales span the call, unless steps were shown row-invariant', () => {
    expect(lookupRefusal({ ...info, batchInvariant: false, quantizedActivations: true })).toMatch(/quantizes activations per call/);
    // --exact-quantized: rows run alone (batchInvariant false), and the graph's steps are row-invariant
    expect(lookupRefusal({ ...info, batchInvariant: false, quantizedActivations: true, rowInvariant: true })).toBeUndefined();
  });
});
