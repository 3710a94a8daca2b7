/**
 * zod schema -> the JSON Schema (draft 2020-12, OpenAPI 3.1's dialect) that goes into the OpenAPI
 * document, so the document is generated from the very schemas that validate requests.
 * @module
 */
import { z } from 'zod';

export type JsonSchema = { [key: string]: unknown };

// zod writes these bounds for every `.int()`; they only say "a safe integer" and clutter the docs.
const SAFE_INTEGER_BOUNDS: Record<string, number> = { minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };

/**
 * The input side (`io: 'input'`): objects do not forbid unknown keys, which the handlers ignore and
 * clients may send. The root `$schema` is dropped: OpenAPI 3.1 sets the dialect.
 */
export function toJsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as JsonSchema;
  return tidyJsonSchema(rest) as JsonSchema;
}

/**
 * Drops zod's safe-integer bounds and flattens nested `anyOf`s (zod nests a union inside `.nullish()`),
 * which Swagger UI would otherwise show as "any of (any of ...)".
 */
export function tidyJsonSchema(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidyJsonSchema);
  if (typeof value !== 'object' || value === null) return value;
  const out: JsonSchema = {};
  for (const [key, child] of Object.entries(value)) {
    if (SAFE_INTEGER_BOUNDS[key] === child && (value as JsonSchema).type === 'integer') continue;
    out[key] = tidyJsonSchema(child);
  }
  if (Array.isArray(out.anyOf)) out.anyOf = (out.anyOf as JsonSchema[]).flatMap((s) => (isBareAnyOf(s) ? (s.anyOf as JsonSchema[]) : [s]));
  return out;
}

/** `{anyOf: [...]}` with nothing else beside it, so its branches can be lifted into the parent. */
function isBareAnyOf(schema: JsonSchema): boolean {
  return Array.isArray(schema.anyOf) && Object.keys(schema).length === 1;
}
