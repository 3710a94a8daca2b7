/**
 * Property test with an independent oracle: random grammars written both as a GBNF grammar and as
 * a JavaScript regex; every output generated token by token under the GBNF (and under the regex)
 * must match the RegExp.
 */
import { describe, expect, it } from 'vitest';
import { compile, randomWalk, seeded, tokenBytesOf } from '../../../test/helpers/constrained-walk.js';
import { sharedModel, STORIES } from '../../../test/helpers/shared-models.js';

type Node =
  | { t: 'char'; c: string }
  | { t: 'class'; chars: string; negated: boolean }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; items: Node[] }
  | { t: 'rep'; item: Node; min: number; max: number };

const ALPHABET = 'ab1 é.-';

function randomNode(rand: () => number, depth: number): Node {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const atom = (): Node =>
    rand() < 0.6
      ? { t: 'char', c: pick([...ALPHABET]) }
      : { t: 'class', chars: [...new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick([...ALPHABET])))].join(''), negated: rand() < 0.2 };
  if (depth >= 3) return atom();
  const r = rand();
  if (r < 0.3) return { t: 'seq', items: Array.from({ length: 2 + Math.floor(rand() * 3) }, () => randomNode(rand, depth + 1)) };
  if (r < 0.5) return { t: 'alt', items: Array.from({ length: 2 + Math.floor(rand() * 2) }, () => randomNode(rand, depth + 1)) };
  if (r < 0.75) {
    // repetition of something that cannot be empty (an empty item under * would be left-recursive)
    const [min, max] = pick([[0, 1], [0, Infinity], [1, Infinity], [2, 3], [0, 2]]);
    return { t: 'rep', item: atom(), min, max };
  }
  return atom();
}

const reEscape = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const reClassEscape = (c: string) => c.replace(/[\]\\^-]/g, '\\$&');
const gbnfEscape = (c: string) => c.replace(/[\\"\][^-]/g, '\\$&');

function toRegex(n: Node): string {
  switch (n.t) {
    case 'char': return reEscape(n.c);
    case 'class': return `[${n.negated ? '^' : ''}${[...n.chars].map(reClassEscape).join('')}]`;
    case 'seq': return n.items.map(toRegex).join('');
    case 'alt': return `(?:${n.items.map(toRegex).join('|')})`;
    case 'rep': return `(?:${toRegex(n.item)})${n.max === Infinity ? `{${n.min},}` : `{${n.min},${n.max}}`}`;
  }
}

/** GBNF text, with alternations as rules of their own. */
function toGbnf(root: Node): string {
  const rules: string[] = [];
  const emit = (n: Node): string => {
    switch (n.t) {
      case 'char': return `"${gbnfEscape(n.c)}"`;
      case 'class': return `[${n.negated ? '^' : ''}${[...n.chars].map(gbnfEscape).join('')}]`;
      case 'seq': return n.items.map(emit).join(' ');
      case 'alt': {
        const name = `alt-${rules.length}`;
        rules.push('');
        const index = rules.length - 1;
        rules[index] = `${name} ::= ${n.items.map(emit).join(' | ')}`;
        return name;
      }
      case 'rep': {
        const item = `(${emit(n.item)})`;
        if (n.min === 0 && n.max === 1) return `${item}?`;
        if (n.min === 0 && n.max === Infinity) return `${item}*`;
        if (n.min === 1 && n.max === Infinity) return `${item}+`;
        return `${item}{${n.min},${n.max === Infinity ? '' : n.max}}`;
      }
    }
  };
  const body = emit(root);
  return [`root ::= ${body}`, ...rules].join('\n');
}

const stories = sharedModel(STORIES);

describe.skipIf(!stories)('property: random grammars, checked against RegExp', () => {
  const tokenBytes = stories ? tokenBytesOf(`${stories}/tokenizer.json`) : [];

  it('every output of a random GBNF grammar (and of the same regex) matches', () => {
    const rand = seeded(77);
    for (let g = 0; g < 60; g++) {
      const node = randomNode(rand, 0);
      const re = new RegExp(`^(?:${toRegex(node)})$`, 'u');
      for (const spec of [{ kind: 'grammar' as const, gbnf: toGbnf(node) }, { kind: 'regex' as const, pattern: toRegex(node) }]) {
        const c = compile(spec, tokenBytes);
        for (let seed = 0; seed < 3; seed++) {
          const out = randomWalk(c, tokenBytes, { seed: g * 10 + seed, eos: 2, maxTokens: 60, temperature: [0, 0.7, 1.2][seed], budget: true });
          // Complete, whether it ended or max_tokens cut a grammar that could have gone on (`length`, still valid).
          expect(out.complete, `${JSON.stringify(spec)} -> ${JSON.stringify(out.text)}`).toBe(true);
          expect(re.test(out.text), `${JSON.stringify(spec)} -> ${JSON.stringify(out.text)} vs ${re}`).toBe(true);
        }
      }
    }
  });
});
