/**
 * Structured-output request fields: OpenAI's `response_format` (text, json_object, json_schema,
 * plus lmdeploy's regex_schema) and vLLM's `guided_json`, `guided_regex`, `guided_choice`,
 * `guided_grammar` (and `grammar`, llama.cpp server's name for a GBNF grammar), mapped to one
 * engine constraint.
 * @module
 */
import { z } from 'zod';
import { invalidRequest } from '../../errors.js';
import type { Constraint } from '../../runtime/types.js';

const jsonSchemaFormat = z.object({
  name: z.string().nullish(),
  description: z.string().nullish(),
  schema: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

export const constraintFields = {
  response_format: z
    .object({
      type: z.enum(['text', 'json_object', 'json_schema', 'regex_schema']),
      json_schema: jsonSchemaFormat.nullish(),
      regex_schema: z.string().nullish(),
    })
    .nullish(),
  guided_json: z.union([z.record(z.string(), z.unknown()), z.string()]).nullish(),
  guided_regex: z.string().nullish(),
  guided_choice: z.array(z.string()).min(1).nullish(),
  guided_grammar: z.string().nullish(),
  grammar: z.string().nullish(),
};

type ConstraintFields = { [K in keyof typeof constraintFields]?: z.output<(typeof constraintFields)[K]> };

/** The one constraint a request asks for, if any; two at once is a 400. */
export function toConstraint(body: ConstraintFields): Constraint | undefined {
  const found: Array<Constraint> = [];
  const rf = body.response_format;
  if (rf && rf.type === 'json_object') found.push({ spec: { kind: 'json' }, param: 'response_format' });
  if (rf && rf.type === 'json_schema') {
    // No schema: any JSON value would do; OpenAI requires one, so say so.
    if (!rf.json_schema) throw invalidRequest("response_format of type 'json_schema' needs a 'json_schema' object.", 'response_format.json_schema');
    const schema = rf.json_schema.schema ?? {};
    found.push({ spec: { kind: 'jsonSchema', schema }, param: 'response_format.json_schema.schema' });
  }
  if (rf && rf.type === 'regex_schema') {
    if (!rf.regex_schema) throw invalidRequest("response_format of type 'regex_schema' needs a 'regex_schema' string.", 'response_format.regex_schema');
    found.push({ spec: { kind: 'regex', pattern: rf.regex_schema }, param: 'response_format.regex_schema' });
  }
  if (body.guided_json !== undefined && body.guided_json !== null) {
    let schema: unknown = body.guided_json;
    if (typeof schema === 'string') {
      try {
        schema = JSON.parse(schema);
      } catch {
        throw invalidRequest('guided_json is a string that is not JSON.', 'guided_json');
      }
    }
    found.push({ spec: { kind: 'jsonSchema', schema }, param: 'guided_json' });
  }
  if (body.guided_regex !== undefined && body.guided_regex !== null) found.push({ spec: { kind: 'regex', pattern: body.guided_regex }, param: 'guided_regex' });
  if (body.guided_choice) {
    found.push({ spec: { kind: 'choice', options: body.guided_choice.map((text) => ({ kind: 'literal', text })) }, param: 'guided_choice' });
  }
  for (const field of ['guided_grammar', 'grammar'] as const) {
    const g = body[field];
    if (g !== undefined && g !== null) found.push({ spec: { kind: 'grammar', gbnf: g }, param: field });
  }
  if (found.length > 1) {
    throw invalidRequest(`Only one output constraint per request: got ${found.map((c) => c.param!.split('.')[0]).join(' and ')}.`, found[1].param!.split('.')[0]);
  }
  return found[0];
}

export const CONSTRAINT_DOCS: Record<keyof typeof constraintFields, string> = {
  response_format:
    'Structured output, enforced while decoding: {"type": "text"} (default), {"type": "json_object"} (any JSON object), ' +
    '{"type": "json_schema", "json_schema": {"name", "schema", "strict"}} (a document valid under the schema; see the ' +
    'README for the supported keywords; others get 400 invalid_constraint), or lmdeploy\'s {"type": "regex_schema", "regex_schema": "..."}.',
  guided_json: 'vLLM: a JSON Schema (object or JSON string) the output must match; same as response_format json_schema.',
  guided_regex: 'vLLM: a regular expression the whole output must match.',
  guided_choice: 'vLLM: the output is exactly one of these strings.',
  guided_grammar: 'vLLM: a GBNF grammar (llama.cpp syntax, start rule `root`) the output must match.',
  grammar: 'llama.cpp server: a GBNF grammar (start rule `root`); same as guided_grammar.',
};
