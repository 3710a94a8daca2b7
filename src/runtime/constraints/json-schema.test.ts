import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compile, randomSchema, randomWalk, seeded, tokenBytesOf } from '../../../test/helpers/constrained-walk.js';
import { sharedModel, SMOLLM2, STORIES } from '../../../test/helpers/shared-models.js';
import { ByteMatcher } from './matcher.js';
import { flattenGrammar } from './grammar.js';
import { integerRange, jsonObjectGrammar, jsonSchemaGrammar } from './json-schema.js';
import { parseGbnf } from './gbnf.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false }));
const matcher = (schema: unknown) => new ByteMatcher(flattenGrammar(jsonSchemaGrammar(schema)));

describe('JSON Schema grammar', () => {
  it('accepts documents of the schema and refuses others', () => {
    const m = matcher({
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 5 },
        age: { type: 'integer', minimum: 0, maximum: 120 },
        color: { enum: ['red', 'green'] },
        tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 2 },
      },
      required: ['name', 'age'],
      additionalProperties: false,
    });
    expect(m.matches('{"name": "Bob", "age": 42}')).toBe(true);
    expect(m.matches('{\n  "name": "Bob",\n  "age": 120,\n  "color": "red",\n  "tags": ["a", "b"]\n}')).toBe(true);
    expect(m.matches('{"name":"Bob","age":121}')).toBe(false);
    expect(m.matches('{"name":"Bobby!","age":1}')).toBe(false);
    expect(m.matches('{"age":1}')).toBe(false);
    expect(m.matches('{"name":"B","age":1,"color":"blue"}')).toBe(false);
    expect(m.matches('{"name":"B","age":1,"tags":[]}')).toBe(false);
    expect(m.matches('{"name":"B","age":1,"x":1}')).toBe(false);
    expect(m.matches('{"name":"B","age":01}')).toBe(false);
  });

  it('handles $ref (recursive), anyOf, const, nullable types and any JSON', () => {
    const tree = matcher({
      $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['v'] } },
      $ref: '#/$defs/node',
    });
    expect(tree.matches('{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]}')).toBe(true);
    expect(tree.matches('{"v": 1, "kids": [{"w": 2}]}')).toBe(false);
    const m = matcher({ anyOf: [{ type: 'string' }, { const: { a: 1 } }, { type: ['integer', 'null'] }] });
    for (const ok of ['"x"', '{"a":1}', '7', 'null']) expect(m.matches(ok), ok).toBe(true);
    expect(m.matches('true')).toBe(false);
    const any = new ByteMatcher(flattenGrammar(jsonObjectGrammar()));
    expect(any.matches('{"a": [1, 2.5e3, "\\u00e9\\n", {"b": null}], "c": true}')).toBe(true);
    expect(any.matches('[1]')).toBe(false);
    expect(any.matches('{"a": 1,}')).toBe(false);
  });

  it('integer ranges are exact', () => {
    for (const [lo, hi] of [[0, 0], [-15, 7], [3, 1234], [-1000, -999], [95, 105]]) {
      const m = new ByteMatcher(flattenGrammar(parseGbnfRoot(integerRange(lo, hi))));
      for (let v = lo - 20; v <= hi + 20; v++) expect(m.matches(String(v)), `${v} in [${lo}, ${hi}]`).toBe(v >= lo && v <= hi);
      expect(m.matches('-0')).toBe(false);
    }
  });

  it('refuses keywords it cannot enforce, by name', () => {
    expect(() => jsonSchemaGrammar({ type: 'object', properties: { a: { type: 'string' } }, minProperties: 1 })).toThrow(/minProperties/);
    expect(() => jsonSchemaGrammar({ type: 'array', uniqueItems: true })).toThrow(/uniqueItems/);
    expect(() => jsonSchemaGrammar({ oneOf: [{ type: 'string' }, { type: 'string', maxLength: 2 }] })).toThrow(/oneOf is only supported when/);
    expect(() => jsonSchemaGrammar({ type: 'string', format: 'hostname' })).toThrow(/hostname/);
    expect(() => jsonSchemaGrammar({ type: 'string', format: 'uri-reference' })).toThrow(/uri-reference/);
    expect(() => jsonSchemaGrammar({ type: 'number', minimum: 0.5 })).toThrow(/bounds must be integers/);
    expect(() => jsonSchemaGrammar({ $ref: 'http://example.com/s.json' })).toThrow(/local \$ref/);
    expect(() => jsonSchemaGrammar({ type: 'integer', minimum: 5, maximum: 4 })).toThrow(/no integer/);
  });
});

describe("JSON Schema keywords as zod and pydantic write them", () => {
  // A byte vocabulary (every ASCII byte a token, EOS 0) and random walks at temperature 1.
  const bytes: (Uint8Array | null)[] = [null, ...Array.from({ length: 127 }, (_, i) => Uint8Array.of(i + 1))];
  const walks = (schema: object, n = 40) => {
    const c = compile({ kind: 'jsonSchema', schema }, bytes);
    return Array.from({ length: n }, (_, seed) => {
      const out = randomWalk(c, bytes, { seed, eos: 0, maxTokens: 120, temperature: 1, budget: true });
      expect(out.finished, out.text).toBe(true);
      return JSON.parse(out.text);
    });
  };

  it('pattern together with format (z.email(), z.uuid(), z.iso.date(), z.iso.datetime()): strings that match both', () => {
    // z.url() writes format uri alone.
    const urlSchema = z.toJSONSchema(z.object({ v: z.url() }), { target: 'draft-7' });
    for (const doc of walks(urlSchema, 20)) {
      expect(ajv.validate(urlSchema, doc), doc.v).toBe(true);
      expect(z.object({ v: z.url() }).safeParse(doc).success, doc.v).toBe(true);
    }
    for (const [format, field] of [['email', z.email()], ['uuid', z.uuid()], ['date', z.iso.date()], ['date-time', z.iso.datetime()]] as const) {
      const schema = z.toJSONSchema(z.object({ v: field })) as unknown as { properties: { v: { pattern: string; format: string } } };
      expect(schema.properties.v).toMatchObject({ format, pattern: expect.any(String) });
      const pattern = new RegExp(schema.properties.v.pattern);
      const validate = ajv.compile({ type: 'string', format });
      for (const doc of walks(schema)) {
        expect(pattern.test(doc.v), `${format}: ${doc.v} against ${pattern}`).toBe(true);
        expect(validate(doc.v), `${format}: ${doc.v}`).toBe(true);
        expect(z.object({ v: field }).safeParse(doc).success, doc.v).toBe(true);
      }
    }
  });

  it('oneOf whose branches exclude each other (zod discriminatedUnion, pydantic discriminators, distinct types); others refused', () => {
    const shape = z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('circle'), r: z.number().int().min(1).max(9) }),
      z.object({ kind: z.literal('square'), side: z.number().int().min(1).max(9) }),
    ]);
    const schema = z.toJSONSchema(z.object({ shape }), { target: 'draft-7' }) as Record<string, unknown>;
    expect(JSON.stringify(schema)).toContain('"oneOf"');
    const validate = ajv.compile(schema);
    const kinds = new Set<string>();
    for (const doc of walks(schema)) {
      expect(validate(doc), JSON.stringify(doc)).toBe(true);
      expect(z.object({ shape }).safeParse(doc).success).toBe(true);
      kinds.add(doc.shape.kind);
    }
    expect(kinds).toEqual(new Set(['circle', 'square']));
    // pydantic: $ref branches with a discriminator mapping; enum values; distinct types.
    const pydantic = {
      $defs: {
        Cat: { properties: { pet: { const: 'cat', type: 'string' }, lives: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['pet', 'lives'], type: 'object' },
        Dog: { properties: { pet: { enum: ['dog', 'puppy'], type: 'string' } }, required: ['pet'], type: 'object' },
      },
      properties: { animal: { oneOf: [{ $ref: '#/$defs/Cat' }, { $ref: '#/$defs/Dog' }], discriminator: { propertyName: 'pet', mapping: { cat: '#/$defs/Cat' } } } },
      required: ['animal'],
      type: 'object',
    };
    for (const doc of walks(pydantic, 10)) expect(ajv.validate(pydantic, doc), JSON.stringify(doc)).toBe(true);
    expect(() => jsonSchemaGrammar({ oneOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }] })).not.toThrow();
    expect(() => jsonSchemaGrammar({ oneOf: [{ type: 'integer' }, { type: 'number' }] })).toThrow(/oneOf/);
    expect(() => jsonSchemaGrammar({ oneOf: [{ type: 'string', nullable: true }, { type: 'null' }] })).toThrow(/oneOf/);
    const overlapping = { type: 'object', properties: { k: { enum: ['a', 'b'] } }, required: ['k'] };
    expect(() => jsonSchemaGrammar({ oneOf: [overlapping, { ...overlapping, properties: { k: { enum: ['b', 'c'] } } }] })).toThrow(/oneOf/);
  });

  it('exclusive number bounds (z.number().positive(), pydantic gt/lt) are exact; propertyNames {type: string} (z.record) is accepted', () => {
    const cases: Array<[object, (v: number) => boolean]> = [
      [{ type: 'number', exclusiveMinimum: 0 }, (v) => v > 0],
      [{ type: 'number', exclusiveMinimum: 0, maximum: 1 }, (v) => v > 0 && v <= 1],
      [{ type: 'number', minimum: -2, exclusiveMaximum: 3 }, (v) => v >= -2 && v < 3],
      [{ type: 'number', exclusiveMinimum: -3, exclusiveMaximum: -1 }, (v) => v > -3 && v < -1],
      [{ type: 'number', exclusiveMaximum: 0 }, (v) => v < 0],
      [{ type: 'number', minimum: 5, exclusiveMinimum: 5, maximum: 6 }, (v) => v > 5 && v <= 6],
    ];
    const spellings = ['0', '0.0', '-0', '0.5', '0.50', '1', '1.0', '1.05', '-1', '-1.5', '-2', '-2.00', '-2.5', '-3', '-3.0', '2.99', '3', '3.0', '5', '5.0', '5.01', '6', '6.00', '6.1', '12'];
    for (const [schema, inRange] of cases) {
      const m = matcher(schema);
      for (const text of spellings) {
        // The grammar writes a subset: every spelling it takes is in range; it takes the plain ones in range.
        if (m.matches(text)) expect(inRange(Number(text)), `${text} under ${JSON.stringify(schema)}`).toBe(true);
        else if (inRange(Number(text)) && !/\.\d*0$/.test(text) && text !== '-0') expect.fail(`${text} refused under ${JSON.stringify(schema)}`);
      }
      for (const doc of walks(schema, 10)) expect(inRange(doc), `${doc} under ${JSON.stringify(schema)}`).toBe(true);
    }
    expect(() => jsonSchemaGrammar({ type: 'number', exclusiveMinimum: 1, exclusiveMaximum: 1 })).toThrow(/no number/);
    const record = z.toJSONSchema(z.object({ scores: z.record(z.string(), z.number().int().min(0).max(9)) }), { target: 'draft-7' }) as Record<string, unknown>;
    expect(JSON.stringify(record)).toContain('propertyNames');
    for (const doc of walks(record, 10)) expect(ajv.validate(record, doc), JSON.stringify(doc)).toBe(true);
    expect(() => jsonSchemaGrammar({ type: 'object', propertyNames: { pattern: '^a' } })).toThrow(/propertyNames/);
  });

  it('unanchored patterns and impossible pairs', () => {
    // An unanchored pattern constrains somewhere inside; an impossible pair is a 400.
    for (const doc of walks({ type: 'string', format: 'email', pattern: 'x@' }, 10)) expect(doc).toMatch(/x@/);
    expect(() => jsonSchemaGrammar({ type: 'string', format: 'uuid', pattern: '^[g-z]+$' })).toThrow(/no string matches both/);
  });
});

function parseGbnfRoot(e: ReturnType<typeof integerRange>) {
  return { root: 'root', rules: new Map([['root', e]]) };
}
void parseGbnf;

const stories = sharedModel(STORIES);

describe.skipIf(!stories)('property: random schemas x random seeds, token by token on a real vocabulary', () => {
  const tokenBytes = stories ? tokenBytesOf(`${stories}/tokenizer.json`) : [];

  it('every finished output parses and validates (stories260K vocabulary)', () => {
    const rand = seeded(20261206);
    let finished = 0;
    let total = 0;
    for (let s = 0; s < 40; s++) {
      const schema = { type: 'object', properties: { a: randomSchema(rand, 1), b: randomSchema(rand, 0) }, required: ['a', 'b'], additionalProperties: false };
      const validate = ajv.compile(schema);
      const c = compile({ kind: 'jsonSchema', schema }, tokenBytes);
      for (let seed = 0; seed < 5; seed++) {
        const temperature = [0, 0.7, 1.2][seed % 3];
        // A budget of 150 tokens: with budget-aware closing every output completes in time.
        const out = randomWalk(c, tokenBytes, { seed: s * 100 + seed, eos: 2, maxTokens: 150, temperature, topK: seed === 4 ? 20 : 0, budget: true });
        total++;
        expect(out.finished, out.text).toBe(true);
        expect(out.tokens.length).toBeLessThanOrEqual(150);
        finished++;
        let doc: unknown;
        expect(() => (doc = JSON.parse(out.text)), out.text).not.toThrow();
        expect(validate(doc), `${JSON.stringify(schema)}\n${out.text}\n${JSON.stringify(validate.errors)}`).toBe(true);
      }
    }
    expect(finished).toBe(total);
  });

  it('every finished output of a GBNF grammar parses', () => {
    const gbnf = `root ::= expr\nexpr ::= term (("+" | "-") term)*\nterm ::= [0-9]{1,3} | "(" expr ")"`;
    const c = compile({ kind: 'grammar', gbnf }, tokenBytes);
    const m = new ByteMatcher(flattenGrammar(parseGbnf(gbnf)));
    let finished = 0;
    for (let seed = 0; seed < 60; seed++) {
      const out = randomWalk(c, tokenBytes, { seed, eos: 2, maxTokens: 60, temperature: [0.7, 1.2][seed % 2], budget: true });
      expect(out.finished, out.text).toBe(true);
      finished++;
      expect(m.matches(out.text), out.text).toBe(true);
      // and it is arithmetic JavaScript can evaluate
      expect(Number.isFinite(Function(`return ${out.text.replace(/\b0+(\d)/g, '$1')}`)())).toBe(true);
    }
    expect(finished).toBe(60);
  });
});

const smollm = sharedModel(SMOLLM2);

describe.skipIf(!smollm)('property: a byte-level BPE vocabulary (SmolLM2, 49k tokens)', () => {
  it('every output completes and validates, multi-byte characters split across tokens included', () => {
    const tokenBytes = tokenBytesOf(`${smollm}/tokenizer.json`);
    const eos = 2; // <|im_end|>
    const rand = seeded(49152);
    for (let s = 0; s < 4; s++) {
      const schema = { type: 'object', properties: { a: randomSchema(rand, 1), b: { type: 'string', maxLength: 6 } }, required: ['a', 'b'], additionalProperties: false };
      const validate = ajv.compile(schema);
      const c = compile({ kind: 'jsonSchema', schema }, tokenBytes);
      for (let seed = 0; seed < 3; seed++) {
        const out = randomWalk(c, tokenBytes, { seed: s * 10 + seed, eos, maxTokens: 80, temperature: [0, 0.7, 1.2][seed], budget: true });
        expect(out.finished, out.text).toBe(true);
        expect(validate(JSON.parse(out.text)), `${JSON.stringify(schema)}\n${out.text}`).toBe(true);
      }
    }
  });
});
