/**
 * Regular expressions (the common subset of JavaScript and Python syntax) to grammar expressions,
 * matched against the whole output: literals and escapes, `.`, classes `[...]` with ranges and
 * negation, `\d \w \s` and their negations, groups `(...)` and `(?:...)`, named groups, `|`, and
 * the quantifiers `* + ? {m} {m,} {m,n}` (lazy forms accepted: they match the same strings).
 * `^` and `$` only at the ends. Backreferences and lookaround are refused.
 * @module
 */
import { alt, ConstraintError, lit, rep, seq, type CharSet, type Expr } from './grammar.js';

const DIGIT: Array<[number, number]> = [[0x30, 0x39]];
const WORD: Array<[number, number]> = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: Array<[number, number]> = [[0x09, 0x0d], [0x20, 0x20]];

export function parseRegex(source: string): Expr {
  let i = 0;
  const fail = (msg: string): never => {
    throw new ConstraintError(`Regex ${JSON.stringify(source)}, at ${i}: ${msg}`);
  };

  const classEscape = (c: string): CharSet | undefined => {
    switch (c) {
      case 'd': return { t: 'set', ranges: DIGIT };
      case 'D': return { t: 'set', ranges: DIGIT, negated: true };
      case 'w': return { t: 'set', ranges: WORD };
      case 'W': return { t: 'set', ranges: WORD, negated: true };
      case 's': return { t: 'set', ranges: SPACE };
      case 'S': return { t: 'set', ranges: SPACE, negated: true };
      default: return undefined;
    }
  };
  const hex = (n: number): number => {
    const h = source.slice(i, i + n);
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) fail('bad hex escape');
    i += n;
    return parseInt(h, 16);
  };
  /** A single-character escape after the backslash (already consumed). */
  const charEscape = (c: string): number => {
    switch (c) {
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case 'f': return 12;
      case 'v': return 11;
      case '0': return 0;
      case 'x': return hex(2);
      case 'u':
        if (source[i] === '{') {
          const end = source.indexOf('}', i);
          if (end < 0) fail('bad \\u{...} escape');
          const cp = parseInt(source.slice(i + 1, end), 16);
          i = end + 1;
          return cp;
        }
        return hex(4);
      default:
        if (/[0-9]/.test(c)) fail('backreferences are not supported');
        if (/[A-Za-z]/.test(c)) fail(`unsupported escape \\${c}`);
        return c.codePointAt(0)!;
    }
  };
  const readChar = (): number => {
    const cp = source.codePointAt(i)!;
    i += cp > 0xffff ? 2 : 1;
    return cp;
  };

  const charClass = (): Expr => {
    // after '['
    const negated = source[i] === '^';
    if (negated) i++;
    const ranges: Array<[number, number]> = [];
    let first = true;
    while (source[i] !== ']' || first) {
      first = false;
      if (i >= source.length) fail('unterminated character class');
      let a: number;
      if (source[i] === '\\') {
        i++;
        const c = source[i++];
        const set = classEscape(c);
        if (set) {
          if (set.negated) fail(`\\${c} inside a character class is not supported`);
          ranges.push(...set.ranges);
          continue;
        }
        a = c === 'b' ? 8 : charEscape(c);
      } else a = readChar();
      if (source[i] === '-' && source[i + 1] !== ']' && i + 1 < source.length) {
        i++;
        let b: number;
        if (source[i] === '\\') {
          i++;
          b = charEscape(source[i++]);
        } else b = readChar();
        if (b < a) fail('character range out of order');
        ranges.push([a, b]);
      } else ranges.push([a, a]);
    }
    i++;
    return { t: 'set', ranges, negated };
  };

  const atom = (): Expr => {
    const c = source[i];
    if (c === '(') {
      i++;
      if (source[i] === '?') {
        const named = (source[i + 1] === '<' && source[i + 2] !== '=' && source[i + 2] !== '!') || (source[i + 1] === 'P' && source[i + 2] === '<');
        if (source[i + 1] === ':') i += 2;
        else if (named) {
          const close = source.indexOf('>', i);
          if (close < 0) fail('unterminated group name');
          i = close + 1;
        } else fail('lookaround and inline flags are not supported');
      }
      const e = alternation();
      if (source[i] !== ')') fail('expected )');
      i++;
      return e;
    }
    if (c === '[') {
      i++;
      return charClass();
    }
    if (c === '.') {
      i++;
      return { t: 'set', ranges: [[10, 10]], negated: true };
    }
    if (c === '\\') {
      i++;
      const e = source[i++];
      if (e === undefined) fail('trailing backslash');
      if (e === 'b' || e === 'B' || e === 'A' || e === 'z' || e === 'Z') fail(`anchor \\${e} is not supported`);
      const set = classEscape(e);
      return set ?? lit(String.fromCodePoint(charEscape(e)));
    }
    if (c === '^' || c === '$') fail(`${c} is only supported at the ends of the pattern`);
    if (c === '*' || c === '+' || c === '?' || c === '{') fail(`nothing to repeat before ${c}`);
    return lit(String.fromCodePoint(readChar()));
  };

  const quantified = (): Expr => {
    let e = atom();
    for (;;) {
      const c = source[i];
      let min: number;
      let max: number;
      if (c === '*' || c === '+' || c === '?') {
        i++;
        [min, max] = c === '*' ? [0, Infinity] : c === '+' ? [1, Infinity] : [0, 1];
      } else if (c === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
        if (!m) return e; // a literal '{' (as JavaScript reads it)
        i += m[0].length;
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (max < min) fail('quantifier {m,n} with n < m');
      } else return e;
      if (source[i] === '?') i++; // lazy: same language
      else if (source[i] === '+') fail('possessive quantifiers are not supported');
      e = rep(e, min, max);
    }
  };

  const sequence = (): Expr => {
    const items: Expr[] = [];
    while (i < source.length && source[i] !== '|' && source[i] !== ')') {
      if (source[i] === '$' && i === source.length - 1) {
        i++;
        break;
      }
      if (source[i] === '{' && !/^\{\d+(,\d*)?\}/.test(source.slice(i))) {
        i++;
        items.push(lit('{'));
        continue;
      }
      items.push(quantified());
    }
    return items.length === 0 ? lit('') : seq(...items);
  };

  function alternation(): Expr {
    const items = [sequence()];
    while (source[i] === '|') {
      i++;
      items.push(sequence());
    }
    return alt(...items);
  }

  if (source[0] === '^') i++;
  const e = alternation();
  if (i < source.length) fail(`unexpected ${source[i]}`);
  return e;
}
