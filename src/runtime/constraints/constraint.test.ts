import { describe, expect, it } from 'vitest';
import { compile, randomWalk } from '../../../test/helpers/constrained-walk.js';
import { createRng } from '../sampling/index.js';
import { sampleConstrained } from './constraint.js';

/** A toy byte vocabulary: every printable ASCII character, a few multi-byte tokens, EOS (id 0, special). */
const VOCAB: (Uint8Array | null)[] = [null];
const enc = (s: string) => new TextEncoder().encode(s);
for (let c = 0x20; c < 0x7f; c++) VOCAB.push(Uint8Array.of(c));
for (const t of ['{"', '":', '", "', 'true', 'false', 'null', '}', '\n  ', 'abc', '12', '"}', 'é']) VOCAB.push(enc(t));
VOCAB.push(new Uint8Array(0)); // an empty token is never allowed
const EOS = 0;
const ends = new Set([EOS]);
const id = (s: string) => VOCAB.findIndex((b) => b !== null && new TextDecoder().decode(b) === s);

describe('ConstraintState', () => {
  const c = compile({ kind: 'jsonSchema', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false } }, VOCAB);

  it('masks exactly the tokens that continue the grammar, and allows EOS only when complete', () => {
    let s = c.start();
    const allowed = (st: typeof s) => VOCAB.map((_, i) => i).filter((i) => st.allows(i, ends));
    expect(allowed(s).map((i) => new TextDecoder().decode(VOCAB[i]!))).toEqual([' ', '{', '{"', '\n  ']);
    for (const t of ['{"', 'o', 'k', '":', ' ', 'true']) s = s.next(id(t));
    expect(s.complete).toBe(false);
    expect(s.allows(EOS, ends)).toBe(false);
    s = s.next(id('}'));
    expect(s.complete).toBe(true);
    expect(s.mustEnd).toBe(true);
    expect(allowed(s)).toEqual([EOS]);
    // the mask agrees with `allows` for every token
    const mid = c.start().next(id('{"'));
    for (let i = 1; i < VOCAB.length; i++) expect(mid.inMask(i)).toBe(mid.allows(i, ends));
  });

  it('tracks the fewest bytes that complete the output', () => {
    expect(c.start().minClose).toBe('{"ok":true}'.length);
    expect(c.start().next(id('{"')).next(id('o')).minClose).toBe('k":true}'.length);
  });

  it('samples from the masked distribution (sampled-token check, then mask on refusal)', () => {
    // Logits favour refused tokens heavily; among the allowed ones ({, space, {" and a newline) the odds are fixed.
    const logits = new Float32Array(VOCAB.length).fill(3);
    const allowedIds = [id('{'), id(' '), id('{"'), id('\n  ')];
    const weights = [0, 1, 2, 0.5];
    allowedIds.forEach((t, k) => (logits[t] = weights[k]));
    const expected = weights.map((w) => Math.exp(w) / weights.reduce((a, v) => a + Math.exp(v), 0));
    const rng = createRng(42);
    const counts = new Map<number, number>();
    const N = 4000;
    for (let k = 0; k < N; k++) {
      const t = sampleConstrained(logits.slice(), { temperature: 1, topK: 0, topP: 1, minP: 0 }, rng, c.start(), ends)!;
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    expect([...counts.keys()].every((t) => allowedIds.includes(t))).toBe(true);
    allowedIds.forEach((t, k) => expect(Math.abs((counts.get(t) ?? 0) / N - expected[k])).toBeLessThan(0.03));
    // top-k applies to the masked distribution: top_k=1 is the best allowed token, not the best overall
    expect(sampleConstrained(logits.slice(), { temperature: 1, topK: 1, topP: 1, minP: 0 }, rng, c.start(), ends)).toBe(id('{"'));
    // greedy takes the best allowed token
    expect(sampleConstrained(logits.slice(), { temperature: 0, topK: 0, topP: 1, minP: 0 }, rng, c.start(), ends)).toBe(id('{"'));
  });

  it('with a token budget, outputs close in time', () => {
    const any = compile({ kind: 'json' }, VOCAB);
    for (let seed = 0; seed < 30; seed++) {
      const out = randomWalk(any, VOCAB, { seed, eos: EOS, maxTokens: 12 + (seed % 10), temperature: 1.2, endBias: -20, budget: true });
      expect(out.finished, out.text).toBe(true);
      expect(typeof JSON.parse(out.text)).toBe('object');
      expect(out.tokens.length).toBeLessThanOrEqual(12 + (seed % 10));
    }
  });

  it('closes in time when the budget is below the byte count but multi-byte tokens fit it', () => {
    // The shortest valid output is 32 bytes; the vocabulary writes it in 3 tokens. A byte-per-token
    // budget could never be met at max_tokens 8, and the output used to be cut unfinished.
    const words: (Uint8Array | null)[] = [...VOCAB, enc('{"description":"'), enc('","category":"'), enc('"}')];
    const schema = { type: 'object', properties: { description: { type: 'string' }, category: { type: 'string' } }, required: ['description', 'category'] };
    const c8 = compile({ kind: 'jsonSchema', schema }, words);
    expect(c8.start().minClose).toBe('{"description":"","category":""}'.length);
    for (let seed = 0; seed < 30; seed++) {
      const out = randomWalk(c8, words, { seed, eos: EOS, maxTokens: 8, temperature: 1.2, endBias: -20, budget: true });
      expect(out.finished, out.text).toBe(true);
      expect(Object.keys(JSON.parse(out.text))).toEqual(['description', 'category']);
      expect(out.tokens.length).toBeLessThanOrEqual(8);
    }
  });

  it('composes: a schema inside literal text (a tool call wrapper)', () => {
    const call = compile(
      {
        kind: 'sequence',
        parts: [
          { kind: 'literal', text: '<tool_call>{"name": "f", "arguments": ' },
          { kind: 'jsonSchema', schema: { type: 'object', properties: { x: { type: 'integer' } }, required: ['x'], additionalProperties: false } },
          { kind: 'literal', text: '}</tool_call>' },
        ],
      },
      VOCAB,
    );
    for (let seed = 0; seed < 10; seed++) {
      const out = randomWalk(call, VOCAB, { seed, eos: EOS, maxTokens: 120, budget: true });
      expect(out.finished).toBe(true);
      const m = /^<tool_call>(.*)<\/tool_call>$/s.exec(out.text);
      expect(m, out.text).not.toBeNull();
      const parsed = JSON.parse(m![1]);
      expect(parsed.name).toBe('f');
      expect(Number.isInteger(parsed.arguments.x)).toBe(true);
    }
  });
});
