/**
 * From a constraint spec (runtime types) to a grammar.
 * @module
 */
import type { ConstraintSpec } from '../types.js';
import { choiceGrammar, ConstraintError, repeatGrammar, sequenceGrammar, type Grammar } from './grammar.js';
import { parseGbnf } from './gbnf.js';
import { jsonObjectGrammar, jsonSchemaGrammar } from './json-schema.js';
import { parseRegex } from './regex.js';

export function grammarOf(spec: ConstraintSpec): Grammar {
  switch (spec.kind) {
    case 'json':
      return jsonObjectGrammar();
    case 'jsonSchema':
      return jsonSchemaGrammar(spec.schema);
    case 'regex':
      if (typeof spec.pattern !== 'string') throw new ConstraintError('The regex must be a string.');
      return { root: 'root', rules: new Map([['root', parseRegex(spec.pattern)]]) };
    case 'grammar':
      if (typeof spec.gbnf !== 'string') throw new ConstraintError('The grammar must be a string.');
      return parseGbnf(spec.gbnf);
    case 'literal':
      return sequenceGrammar([spec.text]);
    case 'sequence':
      return sequenceGrammar(spec.parts.map(grammarOf));
    case 'choice':
      return choiceGrammar(spec.options.map(grammarOf));
    case 'repeat': {
      const max = spec.max ?? Infinity;
      if (!Number.isInteger(spec.min) || spec.min < 0 || !(max === Infinity || (Number.isInteger(max) && max >= spec.min))) {
        throw new ConstraintError('repeat needs integers 0 <= min <= max.');
      }
      return repeatGrammar(grammarOf(spec.item), spec.min, max, spec.separator ?? '');
    }
    default:
      throw new ConstraintError(`Unknown constraint kind ${JSON.stringify((spec as { kind: unknown }).kind)}.`);
  }
}
