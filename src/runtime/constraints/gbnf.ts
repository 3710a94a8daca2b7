/**
 * A parser for llama.cpp's GBNF grammar syntax: `name ::= ...` rules with "literals", [character
 * classes] (ranges, `^` negation, escapes), `.`, (groups), alternation `|`, and the postfix
 * operators `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`; `#` comments. The start rule is `root`.
 * Rules may span lines; a new rule starts wherever `name ::=` appears.
 * @module
 */
import { alt, ConstraintError, lit, ref, rep, seq, type CharSet, type Expr, type Grammar } from './grammar.js';

const NAME = /[A-Za-z0-9_-]/;

export function parseGbnf(source: string): Grammar {
  const rules = new Map<string, Expr>();
  let i = 0;
  const fail = (msg: string): never => {
    const line = source.slice(0, i).split('\n').length;
    throw new ConstraintError(`GBNF grammar, line ${line}: ${msg}`);
  };
  const skipSpace = (): void => {
    while (i < source.length) {
      const c = source[i];
      if (c === '#') while (i < source.length && source[i] !== '\n') i++;
      else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else break;
    }
  };
  const name = (): string => {
    const start = i;
    while (i < source.length && NAME.test(source[i])) i++;
    if (i === start) fail(`expected a rule name at ${JSON.stringify(source.slice(i, i + 10))}`);
    return source.slice(start, i);
  };
  /** Whether `name ::=` starts at the cursor (the next rule). */
  const atRuleStart = (): boolean => /^[A-Za-z0-9_-]+[ \t]*::=/.test(source.slice(i, i + 200));

  const escape = (): number => {
    const c = source[i++];
    const hex = (n: number): number => {
      const h = source.slice(i, i + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) fail(`bad escape \\${c}${h}`);
      i += n;
      return parseInt(h, 16);
    };
    switch (c) {
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case '\\': case '"': case '[': case ']': case '-': case '^': case '/': return c.charCodeAt(0);
      default: return fail(`unknown escape \\${c ?? ''}`);
    }
  };
  const char = (): number => {
    if (i >= source.length) fail('unexpected end of grammar');
    if (source[i] === '\\') {
      i++;
      return escape();
    }
    const cp = source.codePointAt(i)!;
    i += cp > 0xffff ? 2 : 1;
    return cp;
  };

  const primary = (): Expr => {
    const c = source[i];
    if (c === '"') {
      i++;
      let text = '';
      while (source[i] !== '"') {
        if (i >= source.length) fail('unterminated literal');
        text += String.fromCodePoint(char());
      }
      i++;
      return lit(text);
    }
    if (c === '[') {
      i++;
      const negated = source[i] === '^';
      if (negated) i++;
      const ranges: Array<[number, number]> = [];
      while (source[i] !== ']') {
        if (i >= source.length) fail('unterminated character class');
        const a = char();
        if (source[i] === '-' && source[i + 1] !== ']') {
          i++;
          const b = char();
          if (b < a) fail('character range out of order');
          ranges.push([a, b]);
        } else ranges.push([a, a]);
      }
      i++;
      const set: CharSet = { t: 'set', ranges, negated };
      return set;
    }
    if (c === '.') {
      i++;
      return { t: 'set', ranges: [], negated: true };
    }
    if (c === '(') {
      i++;
      const e = alternatives();
      skipSpace();
      if (source[i] !== ')') fail('expected )');
      i++;
      return e;
    }
    if (c !== undefined && NAME.test(c)) return ref(name());
    return fail(`unexpected ${c === undefined ? 'end of grammar' : JSON.stringify(c)}`);
  };

  const postfix = (e: Expr): Expr => {
    for (;;) {
      const c = source[i];
      if (c === '*' || c === '+' || c === '?') {
        i++;
        e = c === '*' ? rep(e, 0) : c === '+' ? rep(e, 1) : rep(e, 0, 1);
      } else if (c === '{') {
        const m = /^\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}/.exec(source.slice(i));
        if (!m) fail('bad repetition {m,n}');
        i += m![0].length;
        const min = Number(m![1]);
        const max = m![2] === undefined ? min : m![3] === '' ? Infinity : Number(m![3]);
        if (max < min) fail('repetition {m,n} with n < m');
        e = rep(e, min, max);
      } else return e;
    }
  };

  const sequence = (): Expr => {
    const items: Expr[] = [];
    for (;;) {
      skipSpace();
      const c = source[i];
      if (c === undefined || c === '|' || c === ')' || atRuleStart()) break;
      items.push(postfix(primary()));
    }
    return items.length === 0 ? lit('') : seq(...items);
  };

  function alternatives(): Expr {
    const items = [sequence()];
    skipSpace();
    while (source[i] === '|') {
      i++;
      items.push(sequence());
      skipSpace();
    }
    return alt(...items);
  }

  skipSpace();
  while (i < source.length) {
    const n = name();
    skipSpace();
    if (source.slice(i, i + 3) !== '::=') fail(`expected ::= after \`${n}\``);
    i += 3;
    if (rules.has(n)) fail(`rule \`${n}\` is defined twice`);
    rules.set(n, alternatives());
    skipSpace();
    if (i < source.length && !atRuleStart()) fail(`unexpected ${JSON.stringify(source[i])}`);
  }
  if (!rules.has('root')) throw new ConstraintError('The GBNF grammar has no `root` rule.');
  return { root: 'root', rules };
}
