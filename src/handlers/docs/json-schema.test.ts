import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { tidyJsonSchema, toJsonSchema } from './json-schema.js';

describe('tidyJsonSchema', () => {
  it("drops zod's safe-integer bounds but keeps real ones", () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(tidyJsonSchema({ type: 'integer', minimum: 0, maximum: max })).toEqual({ type: 'integer', minimum: 0 });
    expect(tidyJsonSchema({ type: 'integer', minimum: -max, maximum: max })).toEqual({ type: 'integer' });
    expect(tidyJsonSchema({ type: 'integer', minimum: 1, maximum: 16 })).toEqual({ type: 'integer', minimum: 1, maximum: 16 });
    // A number (not integer) with those bounds is left alone: the bound might be meant.
    expect(tidyJsonSchema({ type: 'number', maximum: max })).toEqual({ type: 'number', maximum: max });
  });

  it('flattens a bare nested anyOf into its parent', () => {
    const nested = { anyOf: [{ anyOf: [{ type: 'string' }, { type: 'array' }] }, { type: 'null' }] };
    expect(tidyJsonSchema(nested)).toEqual({ anyOf: [{ type: 'string' }, { type: 'array' }, { type: 'null' }] });
  });

  it('keeps a nested anyOf that carries other keywords', () => {
    const described = { anyOf: [{ anyOf: [{ type: 'string' }], description: 'x' }, { type: 'null' }] };
    expect(tidyJsonSchema(described)).toEqual(described);
  });

  it('recurses into properties and items', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const schema = { type: 'object', properties: { ids: { type: 'array', items: { type: 'integer', minimum: 0, maximum: max } } } };
    expect(tidyJsonSchema(schema)).toEqual({ type: 'object', properties: { ids: { type: 'array', items: { type: 'integer', minimum: 0 } } } });
  });
});

describe('toJsonSchema', () => {
  it('describes the input side of a zod object without the $schema key', () => {
    const schema = z.object({ n: z.number().int().min(1).nullish(), s: z.union([z.string(), z.array(z.string())]).nullish() });
    expect(toJsonSchema(schema)).toEqual({
      type: 'object',
      properties: {
        n: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }] },
        s: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }, { type: 'null' }] },
      },
    });
  });
});
