/**
 * The grammar representation every constraint compiles to: named rules over a small expression
 * tree (literal text, character sets, sequences, alternatives, bounded or unbounded repetition,
 * rule references). JSON Schema, regexes and GBNF all become a `Grammar`; grammars compose
 * (`embedGrammar`, `sequenceGrammar`, `choiceGrammar`) so a caller can wrap a schema in literal
 * text, as tool calling does. `flattenGrammar` lowers a grammar to byte-level rules for the matcher.
 * @module
 */

/** A character set: inclusive code point ranges, optionally negated (over all of Unicode). */
export interface CharSet {
  t: 'set';
  ranges: Array<[number, number]>;
  negated?: boolean;
}

export type Expr =
  | { t: 'lit'; text: string }
  | CharSet
  | { t: 'seq'; items: Expr[] }
  | { t: 'alt'; items: Expr[] }
  | { t: 'rep'; item: Expr; min: number; max: number } // max = Infinity for unbounded
  | { t: 'ref'; name: string };

export interface Grammar {
  root: string;
  rules: Map<string, Expr>;
}

/** A grammar the server cannot accept (a client mistake: handlers turn it into a 400). */
export class ConstraintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConstraintError';
  }
}

export const lit = (text: string): Expr => ({ t: 'lit', text });
export const seq = (...items: Expr[]): Expr => (items.length === 1 ? items[0] : { t: 'seq', items });
export const alt = (...items: Expr[]): Expr => (items.length === 1 ? items[0] : { t: 'alt', items });
export const ref = (name: string): Expr => ({ t: 'ref', name });
export const rep = (item: Expr, min: number, max = Infinity): Expr => ({ t: 'rep', item, min, max });
export const opt = (item: Expr): Expr => rep(item, 0, 1);
export const chars = (ranges: Array<[number, number]>, negated = false): Expr => ({ t: 'set', ranges, negated });
/** A set from a string of single characters, e.g. `charsOf('+-')`. */
export const charsOf = (s: string): Expr => chars([...s].map((c) => [c.codePointAt(0)!, c.codePointAt(0)!]));

/** Copies `g`'s rules into `into` with every name prefixed; returns the new root's name. */
export function embedGrammar(into: Map<string, Expr>, g: Grammar, prefix: string): string {
  const rename = (e: Expr): Expr => {
    switch (e.t) {
      case 'ref':
        return ref(prefix + e.name);
      case 'seq':
      case 'alt':
        return { t: e.t, items: e.items.map(rename) };
      case 'rep':
        return { ...e, item: rename(e.item) };
      default:
        return e;
    }
  };
  for (const [name, e] of g.rules) into.set(prefix + name, rename(e));
  return prefix + g.root;
}

/** A grammar matching each part in turn: literal text or a grammar. */
export function sequenceGrammar(parts: Array<string | Grammar>): Grammar {
  const rules = new Map<string, Expr>();
  const items = parts.map((p, i) => (typeof p === 'string' ? lit(p) : ref(embedGrammar(rules, p, `p${i}-`))));
  rules.set('root', seq(...items));
  return { root: 'root', rules };
}

/** A grammar matching any one of the options. */
export function choiceGrammar(options: Grammar[]): Grammar {
  if (options.length === 0) throw new ConstraintError('A choice needs at least one option.');
  const rules = new Map<string, Expr>();
  rules.set('root', alt(...options.map((g, i) => ref(embedGrammar(rules, g, `c${i}-`)))));
  return { root: 'root', rules };
}

/** A grammar matching `min`..`max` repetitions of `item`, separated by `separator`. */
export function repeatGrammar(item: Grammar, min: number, max: number, separator = ''): Grammar {
  const rules = new Map<string, Expr>();
  const one = ref(embedGrammar(rules, item, 'r-'));
  const more = seq(lit(separator), one);
  const body =
    min === 0
      ? max === 0
        ? lit('')
        : opt(seq(one, rep(more, 0, max - 1)))
      : seq(one, rep(more, min - 1, max - 1));
  rules.set('root', body);
  return { root: 'root', rules };
}

// ---------------------------------------------------------------------------------------------
// Lowering to byte-level rules.

/** A 256-bit byte set. */
export type ByteSet = Uint32Array;

/** In flat code: the end of an alternative. */
export const END = -1;

/**
 * Flat byte-level rules, llama.cpp-style: `code` holds each alternative's elements followed by
 * `END`; an element >= 0 is a terminal (index into `sets`), an element <= -2 is a reference to
 * rule `-(e + 2)`. `alts[r]` lists the start positions of rule r's alternatives.
 */
export interface FlatGrammar {
  code: Int32Array;
  sets: ByteSet[];
  alts: number[][];
  root: number;
}

const MAX_FLAT = 2_000_000;

function byteSet(lo: number, hi: number): ByteSet {
  const s = new Uint32Array(8);
  for (let b = lo; b <= hi; b++) s[b >> 5] |= 1 << (b & 31);
  return s;
}

/** UTF-8 byte sequences (as per-byte ranges) covering code points lo..hi (surrogates excluded). */
export function utf8Ranges(lo: number, hi: number): Array<Array<[number, number]>> {
  const out: Array<Array<[number, number]>> = [];
  const split = (a: number, b: number): void => {
    if (a > b) return;
    if (a <= 0xd7ff && b >= 0xd800) {
      split(a, 0xd7ff);
      split(0xe000, b);
      return;
    }
    if (a >= 0xd800 && b <= 0xdfff) return;
    if (a >= 0xd800 && a <= 0xdfff) return split(0xe000, b);
    if (b >= 0xd800 && b <= 0xdfff) return split(a, 0xd7ff);
    for (const max of [0x7f, 0x7ff, 0xffff]) {
      if (a <= max && b > max) {
        split(a, max);
        split(max + 1, b);
        return;
      }
    }
    if (b <= 0x7f) {
      out.push([[a, b]]);
      return;
    }
    const n = b <= 0x7ff ? 2 : b <= 0xffff ? 3 : 4;
    // Split until a and b differ only in a suffix of full continuation ranges.
    for (let i = 1; i < n; i++) {
      const m = (1 << (6 * i)) - 1;
      if ((a & ~m) !== (b & ~m)) {
        if ((a & m) !== 0) {
          split(a, a | m);
          split((a | m) + 1, b);
          return;
        }
        if ((b & m) !== m) {
          split(a, (b & ~m) - 1);
          split(b & ~m, b);
          return;
        }
      }
    }
    const ea = encode(a);
    const eb = encode(b);
    out.push(ea.map((x, i) => [x, eb[i]]));
  };
  split(Math.max(0, lo), Math.min(0x10ffff, hi));
  return out;
}

function encode(cp: number): number[] {
  return [...new TextEncoder().encode(String.fromCodePoint(cp))];
}

/** The ranges of a set, negation resolved, sorted and merged. */
function resolveRanges(set: CharSet): Array<[number, number]> {
  const sorted = set.ranges.map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]).sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  if (!set.negated) return merged;
  const out: Array<[number, number]> = [];
  let next = 0;
  for (const [a, b] of merged) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

/** Lowers a grammar to byte-level rules. Throws ConstraintError for undefined rules and left recursion. */
export function flattenGrammar(g: Grammar): FlatGrammar {
  const ruleIds = new Map<string, number>();
  const bodies: number[][][] = []; // rule -> alternatives -> elements
  const sets: ByteSet[] = [];
  const setIds = new Map<string, number>();
  let size = 0;
  const setId = (s: ByteSet): number => {
    const key = s.join(',');
    let id = setIds.get(key);
    if (id === undefined) {
      id = sets.length;
      sets.push(s);
      setIds.set(key, id);
    }
    return id;
  };
  const newRule = (): number => {
    bodies.push([]);
    return bodies.length - 1;
  };
  const named = (name: string): number => {
    let id = ruleIds.get(name);
    if (id === undefined) {
      if (!g.rules.has(name)) throw new ConstraintError(`The grammar refers to an undefined rule \`${name}\`.`);
      id = newRule();
      ruleIds.set(name, id);
      bodies[id] = alternativesOf(g.rules.get(name)!);
    }
    return id;
  };
  const refCode = (rule: number) => -(rule + 2);
  const anonymous = (alts: number[][]): number => {
    const id = newRule();
    bodies[id] = alts;
    return id;
  };
  const repCache = new Map<Expr, Map<string, number>>();

  // Elements of one sequence.
  function elements(e: Expr): number[] {
    if (size++ > MAX_FLAT) throw new ConstraintError('The grammar is too large.');
    switch (e.t) {
      case 'lit':
        return [...new TextEncoder().encode(e.text)].map((b) => setId(byteSet(b, b)));
      case 'set': {
        const seqs: number[][] = [];
        let ascii: ByteSet | undefined;
        for (const [a, b] of resolveRanges(e)) {
          for (const r of utf8Ranges(a, b)) {
            if (r.length === 1) {
              ascii ??= new Uint32Array(8);
              const s = byteSet(r[0][0], r[0][1]);
              for (let i = 0; i < 8; i++) ascii[i] |= s[i];
            } else seqs.push(r.map(([x, y]) => setId(byteSet(x, y))));
          }
        }
        if (ascii) seqs.unshift([setId(ascii)]);
        if (seqs.length === 0) throw new ConstraintError('The grammar has an empty character set.');
        if (seqs.length === 1) return seqs[0];
        return [refCode(anonymous(seqs))];
      }
      case 'seq':
        return e.items.flatMap(elements);
      case 'alt':
        return [refCode(anonymous(e.items.map(elements)))];
      case 'ref':
        return [refCode(named(e.name))];
      case 'rep':
        return repetition(e);
    }
  }

  function repetition(e: { item: Expr; min: number; max: number }): number[] {
    const { min, max } = e;
    if (!(min >= 0) || !(max >= min) || (max !== Infinity && !Number.isInteger(max)) || !Number.isInteger(min)) {
      throw new ConstraintError(`Invalid repetition {${min},${max}}.`);
    }
    if (min > 1000 || (max !== Infinity && max > 1000)) throw new ConstraintError('Repetition counts above 1000 are not supported.');
    const key = `${min},${max}`;
    let cache = repCache.get(e.item);
    if (!cache) repCache.set(e.item, (cache = new Map()));
    const cached = cache.get(key);
    if (cached !== undefined) return [refCode(cached)];
    const item = elements(e.item);
    const out: number[] = [];
    for (let i = 0; i < min; i++) out.push(...item);
    if (max === Infinity) {
      // star ::= item star | ε  (right recursion: the matcher's tail calls keep stacks flat)
      const star = newRule();
      bodies[star] = [[...item, refCode(star)], []];
      out.push(refCode(star));
    } else {
      // opt_k ::= item opt_{k-1} | ε
      let tail = -1;
      for (let k = 0; k < max - min; k++) {
        const r = newRule();
        bodies[r] = [tail < 0 ? [...item] : [...item, refCode(tail)], []];
        tail = r;
      }
      if (tail >= 0) out.push(refCode(tail));
    }
    const id = anonymous([out]);
    cache.set(key, id);
    return [refCode(id)];
  }

  function alternativesOf(e: Expr): number[][] {
    return e.t === 'alt' ? e.items.map(elements) : [elements(e)];
  }

  const root = named(g.root);
  const code: number[] = [];
  const alts: number[][] = bodies.map(() => []);
  bodies.forEach((body, r) => {
    for (const a of body) {
      alts[r].push(code.length);
      code.push(...a, END);
    }
  });
  const flat: FlatGrammar = { code: Int32Array.from(code), sets, alts, root };
  checkLeftRecursion(flat, ruleIds);
  return flat;
}

/** Rejects grammars where a rule can reach itself without consuming a byte (the matcher would loop). */
function checkLeftRecursion(f: FlatGrammar, ruleIds: Map<string, number>): void {
  const n = f.alts.length;
  const nullable = new Array<boolean>(n).fill(false);
  const elementNullable = (e: number) => e <= -2 && nullable[-(e + 2)];
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < n; r++) {
      if (nullable[r]) continue;
      if (f.alts[r].some((p) => { for (; f.code[p] !== END; p++) if (!elementNullable(f.code[p])) return false; return true; })) {
        nullable[r] = changed = true;
      }
    }
  }
  // left-corner edges: r -> s when s can be the first thing r expands to
  const edges: number[][] = Array.from({ length: n }, () => []);
  for (let r = 0; r < n; r++) {
    for (let p of f.alts[r]) {
      for (; f.code[p] !== END; p++) {
        const e = f.code[p];
        if (e <= -2) edges[r].push(-(e + 2));
        if (!elementNullable(e)) break;
      }
    }
  }
  const state = new Uint8Array(n); // 0 new, 1 on stack, 2 done
  const names = new Map([...ruleIds].map(([k, v]) => [v, k]));
  const visit = (r: number, path: number[]): void => {
    state[r] = 1;
    for (const s of edges[r]) {
      if (state[s] === 1) {
        const named = [...path, r, s].map((x) => names.get(x)).filter((x) => x !== undefined);
        throw new ConstraintError(`The grammar is left-recursive${named.length ? ` (through \`${named[named.length - 1]}\`)` : ''}; rewrite it with repetition.`);
      }
      if (state[s] === 0) visit(s, [...path, r]);
    }
    state[r] = 2;
  };
  for (let r = 0; r < n; r++) if (state[r] === 0) visit(r, []);
}
