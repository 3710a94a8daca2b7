/**
 * Tool calling through the chat endpoint with the official openai SDK: calls parsed from the
 * reply come back as `tool_calls` (whole, or streamed in pieces), and a tool round trip reaches
 * the runtime as messages with calls and results.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../app/create-app.js';
import { MockRuntime } from '../../testing/mock-runtime.js';
import { expect400 } from '../../../test/helpers/handler-requests.js';

const WEATHER = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};
const REPLY = ['Checking.', ' <tool_', 'call>\n{"name": "get_weather", ', '"arguments": {"city": ', '"Paris"}}\n</tool_call>'];

function setup(pieces = REPLY) {
  const runtime = new MockRuntime({ script: { pieces, promptTokens: 7 } });
  const app = createApp({ runtime });
  const openai = new OpenAI({ apiKey: 'x', baseURL: 'http://test/v1', maxRetries: 0, fetch: (url, init) => app.fetch(new Request(url, init)) });
  return { runtime, app, openai };
}

describe('tool calls on /v1/chat/completions', () => {
  it('returns the parsed call with an id, the text before it as content, and finish_reason tool_calls', async () => {
    const { openai, runtime } = setup();
    const res = await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER] });
    const choice = res.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBe('Checking. ');
    expect(choice.message.tool_calls).toEqual([
      { id: expect.stringMatching(/^call_[0-9a-f]{24}$/), type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
    ]);
    expect(runtime.requests[0].tools).toEqual({
      definitions: [{ name: 'get_weather', description: 'Weather of a city', parameters: WEATHER.function.parameters }],
      choice: 'auto',
      parallel: true,
    });
  });

  it('gives content null when the reply is only a call', async () => {
    const { openai } = setup(REPLY.slice(1));
    const res = await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'x' }], tools: [WEATHER] });
    expect(res.choices[0].message.content).toBeNull();
    expect(res.choices[0].message.tool_calls).toHaveLength(1);
  });

  it('streams delta.tool_calls as OpenAI does: id, type and name first, then the arguments in pieces', async () => {
    const { openai } = setup();
    const stream = await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'x' }], tools: [WEATHER], stream: true });
    const deltas: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    const finishes: Array<string | null> = [];
    let content = '';
    for await (const chunk of stream) {
      deltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      content += chunk.choices[0]?.delta.content ?? '';
      finishes.push(chunk.choices[0]?.finish_reason ?? null);
    }
    expect(content).toBe('Checking. ');
    expect(deltas[0]).toEqual({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(deltas.length).toBeGreaterThan(2); // the arguments came in more than one piece
    expect(deltas.slice(1).every((d) => d.index === 0 && d.id === undefined && d.function?.name === undefined)).toBe(true);
    expect(deltas.map((d) => d.function?.arguments).join('')).toBe('{"city": "Paris"}');
    expect(finishes.filter(Boolean)).toEqual(['tool_calls']);
  });

  it("the SDK's stream helper assembles the same call", async () => {
    const { openai } = setup();
    const stream = openai.chat.completions.stream({ model: 'mock-model', messages: [{ role: 'user', content: 'x' }], tools: [WEATHER] });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0].message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } });
  });

  it('leaves the text alone with tool_choice none, and without tools', async () => {
    for (const extra of [{ tools: [WEATHER], tool_choice: 'none' as const }, {}]) {
      const { openai } = setup();
      const res = await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'x' }], ...extra });
      expect(res.choices[0].message.content).toBe(REPLY.join(''));
      expect(res.choices[0].message.tool_calls).toBeUndefined();
      expect(res.choices[0].finish_reason).toBe('stop');
    }
  });

  it('maps a tool round trip (assistant calls with content null, tool results) to runtime messages', async () => {
    const { openai, runtime } = setup(['It is 18 degrees.']);
    await openai.chat.completions.create({
      model: 'mock-model',
      tools: [WEATHER],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 18}' },
      ],
    });
    const request = runtime.requests[0];
    expect(request.input).toEqual({
      kind: 'messages',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', content: '{"temp": 18}', toolCallId: 'call_1' },
      ],
    });
    expect(request.tools).toMatchObject({ choice: { name: 'get_weather' }, parallel: false });
  });

  it.each([
    ['tool_choice', { tool_choice: 'required' }],
    ['tool_choice', { tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'nope' } } }],
    ['tools[1].function.name', { tools: [WEATHER, WEATHER] }],
    ['tools[0].function.name', { tools: [{ type: 'function', function: { name: 'has space' } }] }],
    ['tools[0].type', { tools: [{ type: 'retrieval' }] }],
  ])('refuses a bad %s with a 400 naming it', async (param, extra) => {
    const { app, runtime } = setup();
    const res = await app.fetch(
      new Request('http://test/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], ...extra }),
      }),
    );
    await expect400(res, param);
    expect(runtime.requests).toHaveLength(0);
  });
});
