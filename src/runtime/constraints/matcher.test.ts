import { describe, expect, it } from 'vitest';
import { ByteMatcher } from './matcher.js';
import { ConstraintError, flattenGrammar, utf8Ranges, type Grammar } from './grammar.js';
import { parseGbnf } from './gbnf.js';
import { parseRegex } from './regex.js';

const gbnf = (src: string) => new ByteMatcher(flattenGrammar(parseGbnf(src)));
const regex = (src: string) => new ByteMatcher(flattenGrammar({ root: 'root', rules: new Map([['root', parseRegex(src)]]) } as Grammar));

describe('utf8Ranges', () => {
  it('covers a range with byte sequences that decode back into it', () => {
    for (const [lo, hi] of [[0, 0x10ffff], [0x80, 0x7ff], [0x3b1, 0x3c9], [0x1f600, 0x1f64f], [0xd000, 0xe100]]) {
      const seqs = utf8Ranges(lo, hi);
      for (const cp of [lo, hi, Math.floor((lo + hi) / 2), lo + 1]) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        const bytes = [...new TextEncoder().encode(String.fromCodePoint(cp))];
        expect(seqs.some((s) => s.length === bytes.length && s.every(([a, b], i) => bytes[i] >= a && bytes[i] <= b))).toBe(true);
      }
      // nothing outside: the endpoints' neighbours
      for (const cp of [lo - 1, hi + 1]) {
        if (cp < 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) continue;
        const bytes = [...new TextEncoder().encode(String.fromCodePoint(cp))];
        expect(seqs.some((s) => s.length === bytes.length && s.every(([a, b], i) => bytes[i] >= a && bytes[i] <= b))).toBe(false);
      }
    }
  });
});

describe('GBNF', () => {
  it('matches llama.cpp-style grammars', () => {
    const m = gbnf(`
      # a list of yes/no answers
      root   ::= answer ("," ws answer)*
      answer ::= "yes" | "no" | [0-9]+
      ws     ::= [ \\t]?
    `);
    expect(m.matches('yes')).toBe(true);
    expect(m.matches('yes, no,42')).toBe(true);
    expect(m.matches('yes,')).toBe(false);
    expect(m.isPrefix('yes,')).toBe(true);
    expect(m.isPrefix('maybe')).toBe(false);
  });

  it('handles classes, negation, escapes, dot and bounded repetition', () => {
    const m = gbnf('root ::= "\\"" [^"\\\\]{1,3} "\\"" . [a-cx-z]?');
    expect(m.matches('"ab"!')).toBe(true);
    expect(m.matches('"é"?z')).toBe(true);
    expect(m.matches('"abcd"!')).toBe(false);
    expect(m.matches('""!')).toBe(false);
  });

  it('ends when nothing can follow', () => {
    const m = gbnf('root ::= "a" "b"?');
    const a = m.stepBytes(m.initial, new TextEncoder().encode('a'));
    expect(m.accepts(a)).toBe(true);
    expect(m.onlyEnd(a)).toBe(false);
    expect(m.onlyEnd(m.step(a, 'b'.charCodeAt(0)))).toBe(true);
  });

  it('keeps right recursion flat', () => {
    const m = gbnf('root ::= "x" root | "."');
    expect(m.matches('x'.repeat(5000) + '.')).toBe(true);
    expect(m.stackCount).toBeLessThan(20);
  });

  it('refuses left recursion, undefined rules and syntax errors', () => {
    expect(() => gbnf('root ::= root "x" | "y"')).toThrow(/left-recursive/);
    expect(() => gbnf('root ::= a')).toThrow(/undefined rule `a`/);
    expect(() => gbnf('root ::= "a')).toThrow(ConstraintError);
    expect(() => gbnf('start ::= "a"')).toThrow(/root/);
  });
});

describe('regex', () => {
  it('matches the whole text', () => {
    const m = regex('^\\d{3}-[A-Z][a-z]+(?:, (yes|no))?$');
    expect(m.matches('123-Bob')).toBe(true);
    expect(m.matches('123-Bob, no')).toBe(true);
    expect(m.matches('123-bob')).toBe(false);
    expect(m.matches('1234-Bob')).toBe(false);
  });

  it('agrees with RegExp on random strings', () => {
    const patterns = ['a(b|c)*d?', '[^x]{2,4}', '\\w+@\\w+\\.com', '(ab|a)(bc|c)', '.{0,3}z', '[\\d.]+'];
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (const p of patterns) {
      const m = regex(p);
      const re = new RegExp(`^(?:${p})$`, 'u');
      for (let k = 0; k < 300; k++) {
        const len = Math.floor(rand() * 7);
        const s = Array.from({ length: len }, () => 'abcdxz@.1 é'[Math.floor(rand() * 11)]).join('');
        expect(m.matches(s), `${p} on ${JSON.stringify(s)}`).toBe(re.test(s));
      }
    }
  });

  it('reads named groups (JavaScript and Python forms)', () => {
    expect(regex('(?<year>\\d{4})-(?P<m>0[1-9]|1[0-2])').matches('2026-12')).toBe(true);
    expect(() => regex('(?<year\\d')).toThrow(/unterminated group name/);
  });

  it('refuses what it cannot enforce', () => {
    expect(() => regex('(a)\\1')).toThrow(/backreferences/);
    expect(() => regex('a(?=b)')).toThrow(/lookaround/);
    expect(() => regex('a^b')).toThrow(/only supported at the ends/);
  });
});
