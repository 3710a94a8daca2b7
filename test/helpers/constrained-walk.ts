/**
 * Property-test helpers for constrained decoding: random JSON Schemas, and a "model" with random
 * logits that generates under a constraint token by token, as the engine's sampling does.
 */
import { readFileSync } from 'node:fs';
import { CompiledConstraint, sampleConstrained } from '../../src/runtime/constraints/index.js';
import { createRng } from '../../src/runtime/sampling/index.js';
import type { ConstraintSpec } from '../../src/runtime/types.js';
import { tokenByteTable } from '../../src/model/token-bytes.js';

export function tokenBytesOf(tokenizerJsonPath: string): (Uint8Array | null)[] {
  return tokenByteTable(JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')));
}

import { seeded } from './seeded.js';

export { seeded };

export interface WalkResult {
  text: string;
  tokens: number[];
  /** Ended by end-of-sequence or because nothing could follow; false when maxTokens cut it. */
  finished: boolean;
  /** The text is a complete match (also when cut, if the grammar could have gone on). */
  complete: boolean;
}

/**
 * Generates with random logits (a flat-ish random distribution, plus `endBias` on the end token)
 * under the constraint. `finished` is false when `maxTokens` cut it.
 */
export function randomWalk(
  constraint: CompiledConstraint,
  tokenBytes: ReadonlyArray<Uint8Array | null>,
  opts: { seed: number; eos: number; maxTokens: number; temperature?: number; topK?: number; topP?: number; endBias?: number; budget?: boolean },
): WalkResult {
  const rand = seeded(opts.seed);
  const rng = createRng(opts.seed);
  const V = tokenBytes.length;
  const logits = new Float32Array(V);
  const ends = new Set([opts.eos]);
  let state = constraint.start();
  const tokens: number[] = [];
  const bytes: number[] = [];
  for (let step = 0; step < opts.maxTokens; step++) {
    if (state.mustEnd) return { text: decode(bytes), tokens, finished: true, complete: true };
    for (let i = 0; i < V; i++) logits[i] = rand() * 6;
    logits[opts.eos] += opts.endBias ?? 4;
    const params = { temperature: opts.temperature ?? 1, topK: opts.topK ?? 0, topP: opts.topP ?? 1, minP: 0 };
    const t = sampleConstrained(logits, params, rng, state, ends, opts.budget ? opts.maxTokens - step - 1 : Infinity);
    if (t === undefined) throw new Error(`dead end after ${JSON.stringify(decode(bytes))}`);
    if (t === opts.eos) return { text: decode(bytes), tokens, finished: true, complete: state.complete };
    tokens.push(t);
    bytes.push(...tokenBytes[t]!);
    state = state.next(t);
  }
  // Like the engine: a last token that completes the output and admits nothing after it finishes it.
  return { text: decode(bytes), tokens, finished: state.mustEnd, complete: state.complete };
}

const decode = (bytes: number[]) => new TextDecoder().decode(Uint8Array.from(bytes));

/** A random JSON Schema from the supported keywords (nested objects, arrays, enums, anyOf, ranges, formats). */
export function randomSchema(rand: () => number, depth = 0): Record<string, unknown> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const kinds = depth >= 2 ? ['string', 'integer', 'number', 'boolean', 'enum', 'null'] : ['object', 'array', 'string', 'integer', 'number', 'boolean', 'enum', 'anyOf', 'const'];
  switch (pick(kinds)) {
    case 'object': {
      const n = 1 + Math.floor(rand() * 3);
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      for (let i = 0; i < n; i++) {
        const name = pick(['id', 'name', 'tags', 'x', 'value', 'kind', 'nested']) + i;
        properties[name] = randomSchema(rand, depth + 1);
        if (rand() < 0.6) required.push(name);
      }
      return { type: 'object', properties, required, additionalProperties: false };
    }
    case 'array': {
      const minItems = Math.floor(rand() * 2);
      return { type: 'array', items: randomSchema(rand, depth + 1), minItems, maxItems: minItems + Math.floor(rand() * 3) };
    }
    case 'string':
      return pick([
        { type: 'string', maxLength: 1 + Math.floor(rand() * 8) },
        { type: 'string', minLength: 1, maxLength: 6 },
        { type: 'string', pattern: '^[a-z]{1,5}(-[0-9]{2})?$' },
        { type: 'string', format: pick(['date', 'time', 'date-time', 'uuid', 'email', 'ipv4']) },
      ]);
    case 'integer': {
      const lo = Math.floor(rand() * 200) - 100;
      return pick([{ type: 'integer', minimum: lo, maximum: lo + Math.floor(rand() * 1000) }, { type: 'integer', exclusiveMinimum: lo }, { type: 'integer', maximum: lo }]);
    }
    case 'number':
      return pick([{ type: 'number', minimum: -3, maximum: 7 }, { type: 'number', minimum: 0 }, { type: 'number', maximum: -2 }]);
    case 'boolean':
      return { type: 'boolean' };
    case 'null':
      return { type: ['string', 'null'], maxLength: 3 };
    case 'enum':
      return { enum: pick([['red', 'green', 'blue'], [1, 2, 3], ['a', null, true, 2.5]]) };
    case 'const':
      return { const: pick(['fixed', 42, { a: [1] }]) };
    default:
      return { anyOf: [randomSchema(rand, depth + 1), randomSchema(rand, depth + 1)] };
  }
}

export function compile(spec: ConstraintSpec, tokenBytes: ReadonlyArray<Uint8Array | null>): CompiledConstraint {
  return new CompiledConstraint(spec, tokenBytes, tokenBytes.length);
}
