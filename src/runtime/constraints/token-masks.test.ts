/**
 * Masks composed from shared context-free parts (`TokenMasker.mask`) against the exact walk of the
 * whole trie from the state itself (`exactMask`) and against checking every token alone: random
 * grammars, random vocabularies, random reachable states; then JSON Schemas on a real tokenizer,
 * where the context-free parts are shared across properties and across grammars.
 */
import { describe, expect, it } from 'vitest';
import { seeded, tokenBytesOf } from '../../../test/helpers/constrained-walk.js';
import { sharedModel, SMOLLM2 } from '../../../test/helpers/shared-models.js';
import { parseGbnf } from './gbnf.js';
import { flattenGrammar, type Grammar } from './grammar.js';
import { jsonSchemaGrammar } from './json-schema.js';
import { ByteMatcher, type MatchState } from './matcher.js';
import { TokenMasker, TokenTrie } from './token-index.js';
import { CompiledConstraint, primeJsonStrings, sampleConstrained } from './constraint.js';
import { argmaxAmong } from '../sampling/sample.js';
import { createRng } from '../sampling/rng.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** Tokens over a small alphabet with quotes, brackets, digits and multi-byte characters (some cut mid-character). */
function randomVocab(rand: () => number, size: number): (Uint8Array | null)[] {
  const pieces = ['a', 'b', 'x', '"', '\\', '{', '}', ',', ':', ' ', '1', '0', '-', '.', 'é', '日', 'n', 'u', 'l', 't', 'r', 'e'];
  const vocab: (Uint8Array | null)[] = [null];
  for (let b = 0; b < 256; b++) if (rand() < 0.5) vocab.push(Uint8Array.of(b));
  while (vocab.length < size) {
    const len = 1 + Math.floor(rand() * 6);
    let bytes = enc(Array.from({ length: len }, () => pieces[Math.floor(rand() * pieces.length)]).join(''));
    if (rand() < 0.15) bytes = bytes.slice(0, Math.max(1, bytes.length - 1)); // a partial UTF-8 sequence now and then
    vocab.push(bytes);
  }
  vocab.push(new Uint8Array(0));
  return vocab;
}

/** A random GBNF grammar with nested rules, strings with escapes, numbers and repetition. */
function randomGbnf(rand: () => number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const atoms = ['str', 'num', 'word', '"x"', '"{" ws item "}"', '[ab]+', '"é"?', 'lst'];
  const body = () => Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(atoms)).join(' ');
  return [
    `root ::= ${body()} (${body()} | ${body()})`,
    `item ::= ${pick(['str ":" ws num', 'word', 'str', '"a" item?'])}`,
    `lst ::= "[" (${pick(['str', 'num', 'word'])} ("," ${pick(['str', 'num'])})*)? "]"`,
    'str ::= "\\"" ([^"\\\\] | "\\\\" ["\\\\nu])* "\\""',
    'num ::= "-"? [0-9]+ ("." [0-9]+)?',
    `word ::= ${pick(['"null"', '"true" | "tr"', '[a-z] [a-z]?'])}`,
    'ws ::= " "?',
  ].join('\n');
}

/** States reached by random byte walks (each step a byte the state allows). */
function randomStates(m: ByteMatcher, rand: () => number, count: number, maxLen: number): MatchState[] {
  const states: MatchState[] = [];
  for (let k = 0; k < count; k++) {
    let s = m.initial;
    const len = Math.floor(rand() * maxLen);
    for (let i = 0; i < len; i++) {
      const allowed: number[] = [];
      for (let b = 0; b < 256; b++) if (m.step(s, b).length > 0) allowed.push(b);
      if (allowed.length === 0) break;
      s = m.step(s, allowed[Math.floor(rand() * allowed.length)]);
    }
    if (s.length > 0) states.push(s);
  }
  return states;
}

const bits = (mask: Uint32Array, n: number) => Array.from({ length: n }, (_, i) => ((mask[i >>> 5] >>> (i & 31)) & 1) === 1);

describe('composed masks and closing costs equal the exact trie walk', () => {
  it('on random grammars, vocabularies and reachable states (and per-token checks)', () => {
    const rand = seeded(2026);
    let composedFromParts = 0;
    for (let g = 0; g < 40; g++) {
      const vocab = randomVocab(rand, 300 + Math.floor(rand() * 300));
      const trie = new TokenTrie(vocab);
      const m = new ByteMatcher(flattenGrammar(parseGbnf(randomGbnf(rand))));
      const masker = new TokenMasker(m, trie, vocab.length);
      for (const state of randomStates(m, rand, 25, 30)) {
        const composed = bits(masker.mask(state), vocab.length);
        expect(composed).toEqual(bits(masker.exactMask(state), vocab.length));
        // the slowest reference: each token's bytes stepped alone
        expect(composed).toEqual(vocab.map((b) => !!b && b.length > 0 && m.stepBytes(state, b).length > 0));
        expect(Array.from(masker.costs(state))).toEqual(Array.from(masker.exactCosts(state)));
        if (m.commonAncestor(state) >= 0) composedFromParts++;
      }
    }
    // about half the states were composed (a detached part plus the continuation), not walked whole
    expect(composedFromParts).toBeGreaterThan(300);
  });

  it('detaching keeps what each byte string does until it leaves the construct', () => {
    const m = new ByteMatcher(flattenGrammar(parseGbnf('root ::= "[" str ("," str)* "]"\nstr ::= "\\"" [a-z]* "\\""')));
    const inString = m.stepBytes(m.initial, enc('["ab'));
    const ancestor = m.commonAncestor(inString);
    expect(ancestor).toBeGreaterThan(0);
    const detached = m.detach(inString, ancestor);
    expect(m.accepts(m.stepBytes(detached, enc('cd"')))).toBe(true); // the string ended: back to the context
    expect(m.stepBytes(detached, enc('c",')).length).toBe(0); // the detached state knows nothing after it
    expect(m.stepBytes(inString, enc('c",')).length).toBeGreaterThan(0);
    expect(m.stepBytes(m.continuation(ancestor), enc(',"x"]')).length).toBeGreaterThan(0);
    // the second string is another context with the same detached state
    const second = m.stepBytes(m.initial, enc('["ab","c'));
    expect(m.commonAncestor(second)).not.toBe(ancestor);
    expect(ByteMatcher.key(m.detach(second, m.commonAncestor(second)))).toBe(ByteMatcher.key(detached));
  });

  it('describes equal structure in two grammars with the same key, and different structure differently', () => {
    const a = new ByteMatcher(flattenGrammar(parseGbnf('root ::= "<" str ">"\nstr ::= "\\"" [a-z]* "\\""')));
    const b = new ByteMatcher(flattenGrammar(parseGbnf('root ::= "(" x ")" str\nx ::= [0-9]\nstr ::= "\\"" [a-z]* "\\""')));
    const c = new ByteMatcher(flattenGrammar(parseGbnf('root ::= "<" str ">"\nstr ::= "\\"" [a-y]* "\\""')));
    const key = (m: ByteMatcher, text: string) => {
      const s = m.stepBytes(m.initial, enc(text));
      return m.structureKey(m.detach(s, m.commonAncestor(s)));
    };
    expect(key(a, '<"ab')).toBeDefined();
    expect(key(a, '<"ab')).toBe(key(b, '(1)"q'));
    expect(key(a, '<"ab')).not.toBe(key(c, '<"ab'));
  });
});

describe('primed JSON strings', () => {
  it('a new schema finds its string bodies already computed for the tokenizer', () => {
    const vocab = randomVocab(seeded(5), 800);
    primeJsonStrings(vocab, vocab.length);
    const schema = { type: 'object', properties: { note: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } }, required: ['note', 'tags'] };
    const c = new CompiledConstraint({ kind: 'jsonSchema', schema }, vocab, vocab.length);
    for (const text of ['{"note": "ab', '{"note": "a\\', '{"note": "a", "tags": ["x", "y']) {
      const state = c.matcher.stepBytes(c.matcher.initial, enc(text));
      expect(bits(c.masker.mask(state), vocab.length)).toEqual(bits(c.masker.exactMask(state), vocab.length));
      expect(Array.from(c.masker.costs(state))).toEqual(Array.from(c.masker.exactCosts(state)));
    }
    expect(c.masker.localComputed).toBe(0);
  });
});

describe('greedyAmong (the lookahead promise of a constrained greedy row)', () => {
  it('its argmax is the token greedy constrained sampling picks; withheld where the budget may refuse a token', () => {
    const rand = seeded(31);
    const vocab = randomVocab(rand, 600);
    const EOS = 0;
    const ends = new Set([EOS]);
    const schema = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'integer' } } }, required: ['a', 'b'], additionalProperties: false };
    const c = new CompiledConstraint({ kind: 'jsonSchema', schema }, vocab, vocab.length);
    let promisedUnderBudget = 0;
    let withheld = 0;
    for (let k = 0; k < 300; k++) {
      // a random document prefix, token by token through the greedy sampler itself
      let state = c.start();
      const steps = Math.floor(rand() * 12);
      for (let i = 0; i < steps && !state.mustEnd; i++) {
        const logits = Float32Array.from(vocab, () => rand() * 4);
        const t = sampleConstrained(logits, { temperature: 0, topK: 0, topP: 1, minP: 0 }, createRng(1), state, ends);
        if (t === undefined || t === EOS) break;
        state = state.next(t);
      }
      if (state.mustEnd) continue;
      const budget = [Infinity, 2, 5, 10, 20, 40][k % 6];
      const logits = Float32Array.from(vocab, () => Math.floor(rand() * 6)); // ties
      const among = state.greedyAmong(ends, budget);
      const picked = sampleConstrained(logits.slice(), { temperature: 0, topK: 0, topP: 1, minP: 0 }, createRng(1), state, ends, budget);
      if (among) {
        expect(argmaxAmong(logits, among)).toBe(picked ?? -1);
        if (budget !== Infinity) promisedUnderBudget++;
      } else {
        expect(budget).not.toBe(Infinity); // no promise only where the budget may refuse a token
        withheld++;
      }
    }
    // promises under a finite budget where it cannot bind, none where it may
    expect(promisedUnderBudget).toBeGreaterThan(30);
    expect(withheld).toBeGreaterThan(10);
  });
});

const smol = sharedModel(SMOLLM2);

describe.skipIf(!smol)('JSON Schema masks on a 49k vocabulary', () => {
  const tokenBytes = smol ? tokenBytesOf(`${smol}/tokenizer.json`) : [];
  const schema = (extra: Record<string, unknown>) => ({
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' }, city: { type: 'string' }, ...extra },
    required: ['name', 'age', 'city', ...Object.keys(extra)],
    additionalProperties: false,
  });
  const masker = (s: Record<string, unknown>) => {
    const m = new ByteMatcher(flattenGrammar(jsonSchemaGrammar(s) as Grammar));
    return new TokenMasker(m, trie, tokenBytes.length);
  };
  const trie = smol ? new TokenTrie(tokenBytes) : (undefined as unknown as TokenTrie);

  it('equal the exact walk along documents, and share string bodies across properties and schemas', () => {
    const first = masker(schema({ tags: { type: 'array', items: { type: 'string', maxLength: 3 } } }));
    const doc = '{"name": "Ann \\"x\\" é", "age": -12, "city": "Oslo", "tags": ["ab", "c"]}';
    const m = first.matcher;
    let s = m.initial;
    enc(doc).forEach((b, i) => {
      // every other byte: each exact walk visits up to 100k trie nodes
      if (i % 2 === 0) expect(bits(first.mask(s), tokenBytes.length)).toEqual(bits(first.exactMask(s), tokenBytes.length));
      if (i % 10 === 0) {
        const exact = first.exactCosts(s);
        expect(first.costs(s).every((c, t) => c === exact[t])).toBe(true);
      }
      s = m.step(s, b);
    });
    expect(m.accepts(s)).toBe(true);
    const inName = m.stepBytes(m.initial, enc('{"name": "Ann'));
    const inCity = m.stepBytes(m.initial, enc('{"name": "A", "age": 1, "city": "Os'));
    first.mask(inName);
    const walked = first.localComputed;
    first.mask(inCity); // another context, the same string body: nothing walked from scratch
    expect(first.localComputed).toBe(walked);
    expect(bits(first.mask(inCity), tokenBytes.length)).toEqual(bits(first.exactMask(inCity), tokenBytes.length));
    // a second schema on the same tokenizer finds the string body from the first
    const second = masker(schema({ zip: { type: 'string' } }));
    const inZip = second.matcher.stepBytes(second.matcher.initial, enc('{"name": "A", "age": 1, "city": "B", "zip": "7'));
    expect(bits(second.mask(inZip), tokenBytes.length)).toEqual(bits(second.exactMask(inZip), tokenBytes.length));
    expect(second.localComputed).toBe(0);
  });
});
