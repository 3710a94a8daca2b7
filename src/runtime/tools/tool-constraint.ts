/**
 * What `tool_choice: "required"` or a named function enforces: the reply is one call (or, with
 * parallel calls, one or more) in the model's own call format, each a function of the request's
 * tools with arguments valid under its `parameters` schema. Built from the constraint specs, so the
 * sampler makes any other reply impossible.
 * @module
 */
import type { ConstraintSpec, ToolsRequest } from '../types.js';
import type { ToolCallFormat } from './tool-call-parser.js';

/** At most this many calls in one enforced reply. */
export const MAX_ENFORCED_CALLS = 8;

/** The constraint for a request whose tool_choice demands a call; undefined for `auto` and `none`. */
export function toolCallConstraint(tools: ToolsRequest, format: ToolCallFormat): ConstraintSpec | undefined {
  const { choice } = tools;
  if (choice === 'auto' || choice === 'none') return undefined;
  const functions = typeof choice === 'object' ? tools.definitions.filter((d) => d.name === choice.name) : tools.definitions;
  const argumentsKey = format === 'json' ? 'parameters' : 'arguments';
  const call: ConstraintSpec = {
    kind: 'choice',
    options: functions.map((f) => ({
      kind: 'sequence',
      parts: [
        { kind: 'literal', text: `{"name": ${JSON.stringify(f.name)}, "${argumentsKey}": ` },
        { kind: 'jsonSchema', schema: f.parameters ?? { type: 'object' } },
        { kind: 'literal', text: '}' },
      ],
    })),
  };
  const item: ConstraintSpec =
    format === 'hermes' ? { kind: 'sequence', parts: [{ kind: 'literal', text: '<tool_call>\n' }, call, { kind: 'literal', text: '\n</tool_call>' }] } : call;
  return tools.parallel ? { kind: 'repeat', item, min: 1, max: MAX_ENFORCED_CALLS, separator: format === 'hermes' ? '\n' : '; ' } : item;
}
