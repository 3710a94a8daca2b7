/**
 * Tool calls are enforced, not hoped for: with tool_choice "required" or a named function,
 * stories260K (a story model that has never seen a tool) must answer with calls that parse, name a
 * given function and carry arguments valid under its schema, at temperatures 0 to 1.2, whole and
 * streamed, through the real server and the official openai client. A tool round trip (the call,
 * its result, the next turn) is accepted.
 */
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const ajv = new Ajv({ strict: false });
const dir = sharedModel(STORIES);

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  // Small: stories260K has a 512-token context and a 512-token vocabulary, and the tools go into its prompt.
  {
    type: 'function',
    function: { name: 'ping', parameters: { type: 'object', properties: { to: { enum: ['a', 'b'] } }, required: ['to'], additionalProperties: false } },
  },
  {
    type: 'function',
    function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'] } },
  },
];
const ADD = TOOLS[1];
const validators = new Map(TOOLS.map((t) => [t.type === 'function' ? t.function.name : '', ajv.compile(t.type === 'function' ? t.function.parameters! : {})]));

function checkCalls(calls: OpenAI.Chat.Completions.ChatCompletionMessageToolCall[] | undefined, only?: string) {
  expect(calls?.length).toBeGreaterThan(0);
  for (const call of calls!) {
    expect(call.type).toBe('function');
    if (call.type !== 'function') continue;
    expect(call.id).toMatch(/^call_/);
    if (only) expect(call.function.name).toBe(only);
    const validate = validators.get(call.function.name);
    expect(validate, call.function.name).toBeDefined();
    const args = JSON.parse(call.function.arguments);
    expect(validate!(args), `${call.function.arguments} ${JSON.stringify(validate!.errors)}`).toBe(true);
  }
}

describe.skipIf(!dir)('tool calls on stories260K through the real server', () => {
  let server: CliServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startCli([dir!, '--dtype', 'fp32']);
    client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];

  it.each([0, 0.7, 1.2])('tool_choice required at temperature %s: valid calls of given functions, finish_reason tool_calls', async (temperature) => {
    const res = await client.chat.completions.create({ model: STORIES, messages, tools: TOOLS, tool_choice: 'required', parallel_tool_calls: false, temperature, seed: 3, n: 2 });
    for (const choice of res.choices) {
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.content).toBeNull();
      expect(choice.message.tool_calls).toHaveLength(1);
      checkCalls(choice.message.tool_calls);
    }
  });

  it('with parallel calls, the calls close within the context that is left: valid, finish_reason tool_calls', async () => {
    // The prompt leaves 77 of the 512 tokens; the story model spends them on blank space inside a call, so the
    // budget closes the call at the last token (seeds 0, 3 and 9 did that and said "length" before).
    const replies = await Promise.all(
      [0, 3, 9].map((seed) => client.chat.completions.create({ model: STORIES, messages, tools: TOOLS, tool_choice: 'required', temperature: 1.2, seed, n: 2 })),
    );
    for (const choice of replies.flatMap((res) => res.choices)) {
      expect(choice.finish_reason).toBe('tool_calls');
      checkCalls(choice.message.tool_calls);
    }
  });

  it('a named function, one call only (parallel_tool_calls false), streamed in pieces', async () => {
    const stream = await client.chat.completions.create({
      model: STORIES,
      messages,
      tools: [ADD],
      tool_choice: { type: 'function', function: { name: 'add' } },
      parallel_tool_calls: false,
      temperature: 0.9,
      seed: 11,
      stream: true,
    });
    const calls: Array<{ id?: string; name?: string; arguments: string }> = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const d of chunk.choices[0]?.delta.tool_calls ?? []) {
        calls[d.index] ??= { arguments: '' };
        if (d.id) calls[d.index].id = d.id;
        if (d.function?.name) calls[d.index].name = d.function.name;
        calls[d.index].arguments += d.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('tool_calls');
    expect(calls).toHaveLength(1);
    checkCalls([{ id: calls[0].id!, type: 'function', function: { name: calls[0].name!, arguments: calls[0].arguments } }], 'add');
  });

  it('takes a tool round trip and answers the next turn', async () => {
    const first = await client.chat.completions.create({ model: STORIES, messages, tools: [ADD], tool_choice: { type: 'function', function: { name: 'add' } }, temperature: 0 });
    const call = first.choices[0].message.tool_calls![0];
    const next = await client.chat.completions.create({
      model: STORIES,
      tools: [ADD],
      max_tokens: 8,
      temperature: 0,
      messages: [...messages, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"temp": 18}' }],
    });
    expect(next.choices[0].finish_reason).toMatch(/stop|length|tool_calls/);
  });

  it('refuses a tool_choice that requires a call together with response_format', async () => {
    const error = await client.chat.completions
      .create({ model: STORIES, messages, tools: TOOLS, tool_choice: 'required', response_format: { type: 'json_object' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
  });
});
