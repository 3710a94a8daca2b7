/**
 * The schemas the real-client suites ask for (zod, as LangChain and the AI SDK take them; the
 * Python suite gets their JSON Schema): nested objects, arrays with min/max items, enums, anyOf,
 * oneOf with a discriminator, formats, nullable fields, literals and numbers with ranges, each with a prompt SmolLM2 can answer.
 * Every output is validated twice: by zod, and by ajv against the JSON Schema the client sent.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { z } from 'zod';

export interface ClientSchema {
  name: string;
  prompt: string;
  zod: z.ZodObject;
  /**
   * max_tokens for this schema: near or below the greedy answer's length, above the shortest valid
   * document in tokens. The engine closes the JSON within it (a rambling temperature-1 answer still
   * ends valid, with finish_reason stop), which keeps the suites' decode time small.
   */
  maxTokens: number;
}

const person = z.object({
  name: z.string().describe('full name'),
  age: z.number().int().min(0).max(120),
  role: z.enum(['engineer', 'doctor', 'teacher']),
});

export const SCHEMAS: ClientSchema[] = [
  { name: 'person', maxTokens: 32, prompt: 'Alice Smith is a 34 year old engineer. Extract the person.', zod: person },
  {
    name: 'address',
    maxTokens: 40,
    prompt: 'Write the address 12 Rue de Rivoli, Paris, France as JSON.',
    zod: z.object({
      street: z.string(),
      city: z.string(),
      country: z.object({ name: z.string(), code: z.enum(['FR', 'DE', 'US', 'GB']) }),
    }),
  },
  {
    name: 'order',
    maxTokens: 48,
    prompt: 'Order: two apples and one loaf of bread, 5.40 dollars in total.',
    zod: z.object({
      items: z
        .array(z.object({ product: z.string(), quantity: z.number().int().min(1).max(10) }))
        .min(1)
        .max(3),
      total: z.number().min(0).max(1000),
    }),
  },
  {
    name: 'review',
    maxTokens: 40,
    prompt: 'Review: "Great phone, the battery lasts two days and the screen is bright." Give tags and the sentiment.',
    zod: z.object({ tags: z.array(z.string()).min(2).max(4), sentiment: z.enum(['positive', 'neutral', 'negative']) }),
  },
  {
    name: 'contact',
    maxTokens: 32,
    prompt: 'How can I reach Bob? His email is bob@example.com.',
    zod: z.object({
      person: z.string(),
      contact: z.union([z.object({ email: z.string() }), z.object({ phone: z.string() })]),
    }),
  },
  {
    name: 'weather',
    maxTokens: 32,
    prompt: 'It is 21.5 degrees Celsius in Paris with 60 percent humidity.',
    zod: z.object({
      city: z.string(),
      temperature: z.number().min(-50).max(60),
      humidity: z.number().int().min(0).max(100),
      unit: z.enum(['C', 'F']),
    }),
  },
  {
    name: 'ticket',
    maxTokens: 32,
    prompt: 'Classify this message: "The app crashes when I press save."',
    zod: z.object({ label: z.enum(['bug', 'feature', 'question']), confidence: z.number().min(0).max(1), urgent: z.boolean() }),
  },
  {
    name: 'recipe',
    maxTokens: 48,
    prompt: 'A pancake recipe with flour, milk and eggs.',
    zod: z.object({
      title: z.string(),
      ingredients: z
        .array(z.object({ item: z.string(), grams: z.number().min(0).max(1000) }))
        .min(2)
        .max(4),
      vegetarian: z.boolean(),
    }),
  },
  {
    name: 'company',
    maxTokens: 48,
    prompt: 'Acme has a sales department led by Jane, a director, and a research department led by Tom, a manager.',
    zod: z.object({
      company: z.object({
        name: z.string(),
        departments: z
          .array(z.object({ name: z.string(), head: z.object({ name: z.string(), title: z.enum(['director', 'manager', 'lead']) }) }))
          .min(1)
          .max(2),
      }),
    }),
  },
  {
    name: 'answer',
    maxTokens: 40,
    prompt: 'What is the capital of France? Say where you know it from, or null.',
    zod: z.object({ answer: z.string(), source: z.string().nullable(), score: z.number().int().min(1).max(5) }),
  },
  {
    name: 'shape',
    maxTokens: 40,
    prompt: 'A point at x 3, y 4, drawn in red or blue.',
    zod: z.object({
      kind: z.literal('point'),
      x: z.number().int().min(-100).max(100),
      y: z.number().int().min(-100).max(100),
      colors: z
        .array(z.enum(['red', 'green', 'blue']))
        .min(1)
        .max(2),
    }),
  },
  {
    // What zod writes for these: format beside pattern (email), oneOf with a discriminator, exclusiveMinimum.
    name: 'payment',
    maxTokens: 56,
    prompt: 'Jane (jane@example.com) paid 42.50 euros by card, the card number ends in 1234.',
    zod: z.object({
      email: z.email(),
      amount: z.number().positive().max(10000),
      method: z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('card'), last4: z.string().regex(/^\d{4}$/) }),
        z.object({ kind: z.literal('transfer'), reference: z.string() }),
      ]),
    }),
  },
];

/** The JSON Schema the clients derive from the zod schema (what goes on the wire). */
export const jsonSchemaOf = (schema: ClientSchema): Record<string, unknown> => z.toJSONSchema(schema.zod) as Record<string, unknown>;

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
// Formats asserted too (email, date...), not only their zod patterns.
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
const validators = new Map(SCHEMAS.map((s) => [s.name, ajv.compile(jsonSchemaOf(s))]));

/** Throws (naming the schema, the value and ajv's errors) unless `value` is valid under the schema, by ajv and by zod. */
export function checkValid(name: string, value: unknown): void {
  const schema = SCHEMAS.find((s) => s.name === name);
  if (!schema) throw new Error(`no schema ${name}`);
  const validate = validators.get(name)!;
  if (!validate(value)) throw new Error(`${name}: ${JSON.stringify(value)} is invalid: ${ajv.errorsText(validate.errors)}`);
  const parsed = schema.zod.safeParse(value);
  if (!parsed.success) throw new Error(`${name}: ${JSON.stringify(value)} fails zod: ${parsed.error.message}`);
}
