/**
 * The official `openai` SDK against the app in-process: whatever it sends must work, and whatever
 * we answer must parse into its types and error classes.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { createApp } from './app/create-app.js';
import { MockRuntime } from './testing/mock-runtime.js';

function client(runtime: MockRuntime, apiKeys?: string[], apiKey = 'x') {
  const app = createApp({ runtime, apiKeys });
  return new OpenAI({
    apiKey,
    baseURL: 'http://test/v1',
    maxRetries: 0,
    fetch: (url, init) => app.fetch(new Request(url, init)),
  });
}

const runtime = () =>
  new MockRuntime({
    model: 'mock-model',
    embeddingModel: 'embed-model',
    embeddingSize: 4,
    script: { pieces: ['The', ' answer', ' is', ' 42.'], promptTokens: 5 },
  });

describe('openai SDK against createApp', () => {
  it('lists and retrieves models', async () => {
    const openai = client(runtime());
    const page = await openai.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['mock-model', 'embed-model']);
    expect(page.data[0]).toMatchObject({ object: 'model', created: 1_700_000_000, owned_by: 'edgellm' });
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(['mock-model', 'embed-model']);
    expect((await openai.models.retrieve('embed-model')).id).toBe('embed-model');
  });

  it('creates a completion', async () => {
    const rt = runtime();
    const completion = await client(rt).completions.create({ model: 'mock-model', prompt: 'Question?', max_tokens: 3, temperature: 0.2 });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0].text).toBe('The answer is');
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8, prompt_tokens_details: { cached_tokens: 0 } });
    expect(rt.requests[0].sampling.temperature).toBe(0.2);
    expect(rt.requests[0].maxTokens).toBe(3);
  });

  it('streams a completion', async () => {
    const stream = await client(runtime()).completions.create({ model: 'mock-model', prompt: 'Q', stream: true });
    let text = '';
    const finishes: Array<string | null> = [];
    for await (const chunk of stream) {
      text += chunk.choices[0].text;
      finishes.push(chunk.choices[0].finish_reason);
    }
    expect(text).toBe('The answer is 42.');
    expect(finishes.filter((f) => f !== null)).toEqual(['stop']);
  });

  it('creates a chat completion', async () => {
    const rt = runtime();
    const completion = await client(rt).chat.completions.create({
      model: 'mock-model',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'What is the answer?' }] },
      ],
      max_completion_tokens: 100,
      seed: 1,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.choices[0].message.role).toBe('assistant');
    expect(completion.choices[0].message.content).toBe('The answer is 42.');
    expect(completion.choices[0].finish_reason).toBe('stop');
    expect(completion.usage?.total_tokens).toBe(9);
    expect(rt.requests[0].input).toEqual({
      kind: 'messages',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'What is the answer?' },
      ],
    });
    expect(rt.requests[0].maxTokens).toBe(100);
  });

  it('streams a chat completion with include_usage', async () => {
    const stream = await client(runtime()).chat.completions.create({
      model: 'mock-model',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    const ids = new Set<string>();
    let usageChunks = 0;
    let finish: string | null = null;
    let role: string | undefined;
    for await (const chunk of stream) {
      ids.add(chunk.id);
      if (chunk.usage) {
        usageChunks++;
        expect(chunk.choices).toEqual([]);
        expect(chunk.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9, prompt_tokens_details: { cached_tokens: 0 } });
        continue;
      }
      expect(chunk.usage).toBeNull();
      role ??= chunk.choices[0].delta.role;
      content += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    expect(ids.size).toBe(1);
    expect(role).toBe('assistant');
    expect(content).toBe('The answer is 42.');
    expect(finish).toBe('stop');
    expect(usageChunks).toBe(1);
  });

  it('streams a chat completion with the stream helper', async () => {
    const runner = client(runtime()).chat.completions.stream({ model: 'mock-model', messages: [{ role: 'user', content: 'Hi' }] });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0].message.content).toBe('The answer is 42.');
    expect(final.choices[0].finish_reason).toBe('stop');
  });

  it('raises an in-band stream error as an APIError', async () => {
    const rt = new MockRuntime({ script: { pieces: ['a', 'b'], failAfter: { pieces: 1, error: new Error('boom') } } });
    const stream = await client(rt).chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'Hi' }], stream: true });
    const consume = async () => {
      for await (const _chunk of stream) void _chunk;
    };
    await expect(consume()).rejects.toBeInstanceOf(OpenAI.APIError);
  });

  it('creates embeddings as floats', async () => {
    const rt = runtime();
    const res = await client(rt).embeddings.create({ model: 'embed-model', input: ['a', 'b c'], encoding_format: 'float' });
    expect(res.data.map((d) => d.embedding)).toEqual([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
    ]);
    expect(res.model).toBe('embed-model');
    expect(res.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
  });

  it("creates embeddings with the SDK's default base64 encoding", async () => {
    const rt = runtime();
    const openai = client(rt);
    const res = await openai.embeddings.create({ model: 'embed-model', input: ['a', 'b', 'c'], dimensions: 4 });
    expect(res.data.map((d) => Array.from(d.embedding))).toEqual([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
    ]);
    // The SDK asked for base64 on the wire.
    const raw = await openai.embeddings.create({ model: 'embed-model', input: 'a' }).asResponse();
    expect(typeof (await raw.json()).data[0].embedding).toBe('string');
  });

  it('raises NotFoundError for an unknown model', async () => {
    const openai = client(runtime());
    const error = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    const e = error as InstanceType<typeof OpenAI.NotFoundError>;
    expect(e.status).toBe(404);
    expect(e.code).toBe('model_not_found');
    expect(e.param).toBe('model');
    expect(e.type).toBe('not_found_error');
    await expect(openai.models.retrieve('nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('raises BadRequestError for an invalid request', async () => {
    const openai = client(runtime());
    const error = await openai.chat.completions
      .create({ model: 'mock-model', messages: [{ role: 'user', content: 'Hi' }], temperature: 3 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const e = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.param).toBe('temperature');
    expect(e.type).toBe('invalid_request_error');
    const unsupported = await openai.completions.create({ model: 'mock-model', prompt: 'x', suffix: 'y' }).catch((x: unknown) => x);
    expect(unsupported).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unsupported as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('unsupported_parameter');
  });

  it('authenticates with the SDK apiKey, and raises AuthenticationError for a wrong one', async () => {
    const rt = runtime();
    expect((await client(rt, ['sk-right'], 'sk-right').models.list()).data).toHaveLength(2);
    await expect(client(rt, ['sk-right'], 'sk-wrong').models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
