/**
 * Structured output is enforced, not hoped for: stories260K (a story model that has never seen
 * JSON) through the real server and the official openai client, at temperatures 0 to 1.2, must
 * produce documents that parse and validate against their schemas.
 */
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false }));
const dir = sharedModel(STORIES);

const SCHEMAS: Record<string, Record<string, unknown>> = {
  person: {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 20 }, age: { type: 'integer', minimum: 0, maximum: 120 } },
    required: ['name', 'age'],
    additionalProperties: false,
  },
  enums: {
    type: 'object',
    properties: { mood: { enum: ['happy', 'sad', 'angry'] }, level: { enum: [1, 2, 3] }, ok: { type: 'boolean' } },
    required: ['mood', 'level', 'ok'],
    additionalProperties: false,
  },
  nested: {
    type: 'object',
    properties: {
      story: {
        type: 'object',
        properties: { title: { type: 'string', maxLength: 30 }, hero: { type: 'object', properties: { name: { type: 'string', maxLength: 12 }, kind: { enum: ['cat', 'dog', 'girl'] } }, required: ['name', 'kind'], additionalProperties: false } },
        required: ['title', 'hero'],
        additionalProperties: false,
      },
    },
    required: ['story'],
    additionalProperties: false,
  },
  tags: { type: 'object', properties: { tags: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 1, maxItems: 4 } }, required: ['tags'], additionalProperties: false },
  numbers: {
    type: 'object',
    properties: { score: { type: 'number', minimum: 0, maximum: 10 }, delta: { type: 'integer', minimum: -50, maximum: 50 }, count: { type: 'integer', exclusiveMinimum: 0 } },
    required: ['score', 'delta', 'count'],
    additionalProperties: false,
  },
  optional: {
    type: 'object',
    properties: { a: { type: 'string', maxLength: 5 }, b: { type: 'integer', maximum: 9, minimum: 0 }, c: { type: 'boolean' } },
    required: ['b'],
    additionalProperties: false,
  },
  anyOf: {
    type: 'object',
    properties: { value: { anyOf: [{ type: 'integer', minimum: 0, maximum: 99 }, { type: 'string', maxLength: 6 }, { type: 'null' }] } },
    required: ['value'],
    additionalProperties: false,
  },
  formats: {
    type: 'object',
    properties: { day: { type: 'string', format: 'date' }, id: { type: 'string', format: 'uuid' }, code: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{3}$' } },
    required: ['day', 'id', 'code'],
    additionalProperties: false,
  },
  arrayOfObjects: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string', maxLength: 10 }, qty: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['name', 'qty'], additionalProperties: false },
        minItems: 1,
        maxItems: 3,
      },
    },
    required: ['items'],
    additionalProperties: false,
  },
  recursive: {
    $defs: { node: { type: 'object', properties: { n: { type: 'integer', minimum: 0, maximum: 9 }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } }, required: ['n'], additionalProperties: false } },
    $ref: '#/$defs/node',
  },
  nullable: {
    type: 'object',
    properties: { note: { type: ['string', 'null'], maxLength: 10 }, flags: { type: 'array', items: { type: 'boolean' }, maxItems: 3 } },
    required: ['note', 'flags'],
    additionalProperties: false,
  },
};

describe.skipIf(!dir)('structured output on stories260K through the real server', () => {
  let server: CliServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startCli([dir!, '--dtype', 'fp32']);
    client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const model = STORIES;
  const messages = [{ role: 'user' as const, content: 'Once upon a time there was a cat.' }];

  it.each(Object.keys(SCHEMAS))('json_schema %s: valid at temperatures 0, 0.7 and 1.2', async (name) => {
    const schema = SCHEMAS[name];
    const validate = ajv.compile(schema);
    const runs = await Promise.all(
      [0, 0.7, 1.2].map((temperature) =>
        client.chat.completions.create({
          model,
          messages,
          temperature,
          seed: 7,
          n: temperature === 0 ? 1 : 2,
          max_tokens: 400,
          response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
        }),
      ),
    );
    for (const run of runs) {
      for (const choice of run.choices) {
        const text = choice.message.content!;
        expect(choice.finish_reason, text).toBe('stop');
        const doc = JSON.parse(text);
        expect(validate(doc), `${text}\n${JSON.stringify(validate.errors)}`).toBe(true);
      }
    }
  });

  it('json_object on completions and chat, streamed too: always a JSON object', async () => {
    for (const temperature of [0, 0.7, 1.2]) {
      const completion = await client.completions.create({
        model,
        prompt: 'Once upon a time',
        temperature,
        seed: 3,
        max_tokens: 400,
        // @ts-expect-error response_format on /v1/completions is a vLLM extension the SDK does not type
        response_format: { type: 'json_object' },
      });
      const text = completion.choices[0].text;
      expect(completion.choices[0].finish_reason, text).toBe('stop');
      const doc = JSON.parse(text);
      expect(typeof doc === 'object' && doc !== null && !Array.isArray(doc), text).toBe(true);

      let streamed = '';
      let finish: string | null = null;
      for await (const chunk of await client.chat.completions.create({ model, messages, temperature, seed: 3, max_tokens: 400, stream: true, response_format: { type: 'json_object' } })) {
        streamed += chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(finish, streamed).toBe('stop');
      expect(JSON.parse(streamed)).toBeTypeOf('object');
    }
  });

  it('chat.completions.parse with a zod schema', async () => {
    const Story = z.object({ title: z.string().max(20), animal: z.enum(['cat', 'dog', 'bird']), legs: z.number().int().min(0).max(8) });
    const completion = await client.chat.completions.parse({ model, messages, temperature: 0.7, seed: 1, max_tokens: 300, response_format: zodResponseFormat(Story, 'story') });
    const parsed = completion.choices[0].message.parsed;
    expect(parsed).not.toBeNull();
    expect(Story.safeParse(parsed).success).toBe(true);
  });

  it('works with beams, logprobs and stop strings; max_tokens cuts with finish_reason length', async () => {
    const schema = SCHEMAS.enums;
    const validate = ajv.compile(schema);
    const rf = { type: 'json_schema' as const, json_schema: { name: 'enums', schema } };
    const beams = await client.chat.completions.create({ model, messages, max_tokens: 200, response_format: rf, num_beams: 3 } as never as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(validate(JSON.parse(beams.choices[0].message.content!))).toBe(true);
    const withLogprobs = await client.chat.completions.create({ model, messages, max_tokens: 200, temperature: 1, seed: 5, logprobs: true, top_logprobs: 2, response_format: rf });
    const content = withLogprobs.choices[0].message.content!;
    expect(validate(JSON.parse(content))).toBe(true);
    expect(withLogprobs.choices[0].logprobs!.content!.length).toBe(withLogprobs.usage!.completion_tokens);
    const cut = await client.chat.completions.create({ model, messages, max_tokens: 3, temperature: 0, response_format: rf });
    expect(cut.choices[0].finish_reason).toBe('length');
    expect(cut.usage!.completion_tokens).toBe(3);
    const stopped = await client.chat.completions.create({ model, messages, max_tokens: 200, temperature: 0, stop: ['"level"'], response_format: rf });
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(stopped.choices[0].message.content).toMatch(/^\s*\{\s*"mood"\s*:\s*"(happy|sad|angry)"\s*,\s*$/);
  });

  it('guided_regex, guided_choice and a GBNF grammar', async () => {
    const create = (extra: Record<string, unknown>, temperature = 1.2) =>
      client.completions.create({ model, prompt: 'Once upon a time', temperature, seed: 11, max_tokens: 100, ...extra } as never) as Promise<OpenAI.Completion>;
    for (let seed = 0; seed < 3; seed++) {
      const re = await create({ guided_regex: '(Lily|Tom) is [0-9]{1,2} years old\\.', seed });
      expect(re.choices[0].text).toMatch(/^(Lily|Tom) is [0-9]{1,2} years old\.$/);
      expect(re.choices[0].finish_reason).toBe('stop');
      const choice = await create({ guided_choice: ['happy ending', 'sad ending'], seed });
      expect(['happy ending', 'sad ending']).toContain(choice.choices[0].text);
      const g = await create({ grammar: 'root ::= item ("," item){0,3}\nitem ::= "cat" | "dog" | [0-9]+', seed });
      expect(g.choices[0].text).toMatch(/^(cat|dog|[0-9]+)(,(cat|dog|[0-9]+)){0,3}$/);
    }
  });

  it('refuses what it cannot enforce with a 400 naming the field', async () => {
    const bad = client.chat.completions.create({
      model,
      messages,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } }, patternProperties: { '^x': {} } } } },
    });
    await expect(bad).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema', message: expect.stringContaining('patternProperties') });
    const gbnf = client.completions.create({ model, prompt: 'x', grammar: 'root ::= root "a"' } as never);
    await expect(gbnf).rejects.toMatchObject({ status: 400, param: 'grammar', message: expect.stringContaining('left-recursive') });
  });
});
