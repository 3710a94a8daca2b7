import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp, type App } from '../../app/create-app.js';
import { InferenceError } from '../../errors.js';
import { MockRuntime, type MockRuntimeOptions } from '../../testing/mock-runtime.js';
import { type Json, expect400, postJson, readSse } from '../../../test/helpers/handler-requests.js';

const URL_ = 'http://test/v1/chat/completions';

const chat = (app: App, body: unknown, init: RequestInit = {}) => postJson(app, URL_, body, init);
const user = (content: string) => ({ role: 'user', content });

function setup(options: MockRuntimeOptions = {}, onError?: (error: unknown) => void): { app: App; runtime: MockRuntime } {
  const runtime = new MockRuntime(options);
  return { app: createApp({ runtime, onError }), runtime };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('POST /v1/chat/completions: Chinese-LLaMA-Alpaca seed requests', () => {
  it('answers the single-turn example (message key) in OpenAI format', async () => {
    const { app, runtime } = setup();
    const res = await chat(app, {
      messages: [{ role: 'user', message: 'Tell me some stories about Hangzhou' }],
      repetition_penalty: 1.0,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body: Json = await res.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^chatcmpl-[A-Za-z0-9]{22}$/),
      object: 'chat.completion',
      created: expect.any(Number),
      model: 'mock-model',
      system_fingerprint: null,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello world' }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 6, completion_tokens: 2, total_tokens: 8 },
    });
    expect(Math.abs(body.created - Date.now() / 1000)).toBeLessThan(5);
    expect(runtime.requests).toHaveLength(1);
    expect(runtime.requests[0].input).toEqual({
      kind: 'messages',
      messages: [{ role: 'user', content: 'Tell me some stories about Hangzhou' }],
    });
    expect(runtime.requests[0].sampling.repetitionPenalty).toBe(1);
  });

  it('answers the multi-turn example, keeping every turn in order', async () => {
    const { app, runtime } = setup();
    const res = await chat(app, {
      messages: [
        { role: 'user', message: 'Tell me some stories about Hangzhou' },
        { role: 'assistant', message: 'Sure, do you have any specific preferences about Hangzhou?' },
        { role: 'user', message: 'I am quite fond of West Lake, could you tell me about it?' },
      ],
      repetition_penalty: 1.0,
    });
    expect(res.status).toBe(200);
    const body: Json = await res.json();
    expect(body.object).toBe('chat.completion');
    expect(body.choices).toHaveLength(1);
    expect(body.choices[0].message).toEqual({ role: 'assistant', content: 'Hello world' });
    expect(runtime.requests[0].input).toEqual({
      kind: 'messages',
      messages: [
        { role: 'user', content: 'Tell me some stories about Hangzhou' },
        { role: 'assistant', content: 'Sure, do you have any specific preferences about Hangzhou?' },
        { role: 'user', content: 'I am quite fond of West Lake, could you tell me about it?' },
      ],
    });
  });
});

describe('POST /v1/chat/completions: lmdeploy seed request', () => {
  it("answers lmdeploy's example with model internlm-chat-7b", async () => {
    const { app, runtime } = setup({ model: 'internlm-chat-7b' });
    const res = await chat(app, { model: 'internlm-chat-7b', messages: [{ role: 'user', content: 'Hello! Ho are you?' }] });
    expect(res.status).toBe(200);
    const body: Json = await res.json();
    expect(body.model).toBe('internlm-chat-7b');
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]).toEqual({ index: 0, message: { role: 'assistant', content: 'Hello world' }, logprobs: null, finish_reason: 'stop' });
    expect(body.usage).toEqual({ prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 });
    expect(runtime.requests[0].model).toBe('internlm-chat-7b');
  });
});

describe('POST /v1/chat/completions: request mapping', () => {
  it('uses OpenAI defaults and passes nothing the client did not send', async () => {
    const { app, runtime } = setup();
    await chat(app, { messages: [user('Hi')] });
    const r = runtime.requests[0];
    expect(r.defaults).toEqual({ temperature: 1, topP: 1 });
    expect(r.template).toBeUndefined();
    expect(r.model).toBeUndefined();
    expect(r.maxTokens).toBeUndefined();
    expect(r.minTokens).toBeUndefined();
    expect(r.stop).toEqual([]);
    expect(r.ignoreEos).toBe(false);
    expect(r.n).toBe(1);
    expect(r.session).toBeUndefined();
    expect(Object.values(r.sampling).filter((v) => v !== undefined)).toEqual([]);
    expect(r.signal).toBeInstanceOf(AbortSignal);
  });

  it('maps every sampling field to the engine request', async () => {
    const { app, runtime } = setup();
    const res = await chat(app, {
      messages: [user('Hi')],
      temperature: 0.3,
      top_p: 0.9,
      top_k: 50,
      min_p: 0.05,
      repetition_penalty: 1.15,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      num_beams: 3,
      length_penalty: 0.7,
      seed: 1234,
      stop: 'END',
      stop_token_ids: [2, 7],
      max_tokens: 64,
      n: 2,
      logit_bias: { '50256': -100, '13': 2.5 },
      ignore_eos: true,
      min_tokens: 5,
    });
    expect(res.status).toBe(200);
    const r = runtime.requests[0];
    expect(r.sampling).toEqual({
      temperature: 0.3,
      topP: 0.9,
      topK: 50,
      minP: 0.05,
      repetitionPenalty: 1.15,
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      numBeams: 3,
      lengthPenalty: 0.7,
      seed: 1234,
      logitBias: { 50256: -100, 13: 2.5 },
    });
    expect(Object.keys(r.sampling.logitBias!).map((k) => typeof k)).toEqual(['string', 'string']);
    expect(r.sampling.logitBias![50256]).toBe(-100);
    expect(r.stop).toEqual(['END']);
    expect(r.stopTokenIds).toEqual([2, 7]);
    expect(r.maxTokens).toBe(64);
    expect(r.n).toBe(2);
    expect(r.ignoreEos).toBe(true);
    expect(r.minTokens).toBe(5);
  });

  it('turns logit_bias keys into token-id numbers', async () => {
    const { app, runtime } = setup();
    await chat(app, { messages: [user('Hi')], logit_bias: { '007': 3, '0': -1 } });
    expect(runtime.requests[0].sampling.logitBias).toEqual({ 7: 3, 0: -1 });
  });

  it('maps top_k -1 (vLLM/lmdeploy "no top-k") to 0', async () => {
    const { app, runtime } = setup();
    await chat(app, { messages: [user('Hi')], top_k: -1 });
    expect(runtime.requests[0].sampling.topK).toBe(0);
  });

  it('keeps a stop list and drops empty stop strings', async () => {
    const { app, runtime } = setup();
    await chat(app, { messages: [user('Hi')], stop: ['a', '', 'bc'] });
    expect(runtime.requests[0].stop).toEqual(['a', 'bc']);
    await chat(app, { messages: [user('Hi')], stop: null });
    expect(runtime.requests[1].stop).toEqual([]);
  });

  it('prefers max_completion_tokens over max_tokens', async () => {
    const { app, runtime } = setup();
    await chat(app, { messages: [user('Hi')], max_completion_tokens: 7, max_tokens: 99 });
    await chat(app, { messages: [user('Hi')], max_tokens: 99 });
    await chat(app, { messages: [user('Hi')], max_completion_tokens: 0 });
    expect(runtime.requests.map((r) => r.maxTokens)).toEqual([7, 99, 0]);
  });

  it('treats null optional fields as absent', async () => {
    const { app, runtime } = setup();
    const res = await chat(app, { messages: [user('Hi')], temperature: null, top_p: null, max_tokens: null, n: null, stream: null, seed: null });
    expect(res.status).toBe(200);
    expect(runtime.requests[0].sampling.temperature).toBeUndefined();
    expect(runtime.requests[0].sampling.seed).toBeUndefined();
    expect(runtime.requests[0].n).toBe(1);
  });

  it("joins content parts and maps 'developer' to 'system'", async () => {
    const { app, runtime } = setup();
    const res = await chat(app, {
      messages: [
        { role: 'developer', content: 'Be terse.' },
        { role: 'system', content: [{ type: 'text', text: 'Sys' }] },
        { role: 'user', content: [{ type: 'text', text: 'Hello, ' }, { type: 'text', text: 'world' }] },
        { role: 'assistant', content: 'Hi', name: 'bot' },
        { role: 'tool', content: '42' },
      ],
    });
    expect(res.status).toBe(200);
    expect(runtime.requests[0].input).toEqual({
      kind: 'messages',
      messages: [
        { role: 'system', content: 'Be terse.' },
        { role: 'system', content: 'Sys' },
        { role: 'user', content: 'Hello, world' },
        { role: 'assistant', content: 'Hi', name: 'bot' },
        { role: 'tool', content: '42' },
      ],
    });
  });

  it("takes 'content' over 'message', and accepts an empty string content", async () => {
    const { app, runtime } = setup();
    await chat(app, { messages: [{ role: 'user', content: 'from content', message: 'from message' }, { role: 'assistant', content: '' }] });
    expect(runtime.requests[0].input).toEqual({
      kind: 'messages',
      messages: [
        { role: 'user', content: 'from content' },
        { role: 'assistant', content: '' },
      ],
    });
  });

  it('answers with the requested model name', async () => {
    const { app, runtime } = setup({ model: 'm1' });
    const body: Json = await (await chat(app, { model: 'm1', messages: [user('Hi')] })).json();
    expect(body.model).toBe('m1');
    expect(runtime.requests[0].model).toBe('m1');
  });
});

describe('POST /v1/chat/completions: non-streamed responses', () => {
  it('gives n choices with their indexes, and usage for all of them', async () => {
    const { app } = setup({ script: { pieces: ['a', 'b', 'c'], promptTokens: 9 } });
    const body: Json = await (await chat(app, { messages: [user('Hi')], n: 2 })).json();
    expect(body.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: 'abc' }, logprobs: null, finish_reason: 'stop' },
      { index: 1, message: { role: 'assistant', content: 'abc' }, logprobs: null, finish_reason: 'stop' },
    ]);
    expect(body.usage).toEqual({ prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 });
  });

  it("reports finish_reason 'length' when max_tokens cuts the answer", async () => {
    const { app } = setup({ script: { pieces: ['a', 'b', 'c'] } });
    const body: Json = await (await chat(app, { messages: [user('Hi')], max_tokens: 2 })).json();
    expect(body.choices[0].message.content).toBe('ab');
    expect(body.choices[0].finish_reason).toBe('length');
    expect(body.usage.completion_tokens).toBe(2);
  });

  it("passes the runtime's finish reason through", async () => {
    const { app } = setup({ script: { pieces: ['a'], finishReason: 'length' } });
    const body: Json = await (await chat(app, { messages: [user('Hi')] })).json();
    expect(body.choices[0].finish_reason).toBe('length');
  });
});

describe('POST /v1/chat/completions: validation', () => {
  const ok = { messages: [user('Hi')] };

  it.each([
    ['temperature', { temperature: 3 }],
    ['temperature', { temperature: -0.1 }],
    ['temperature', { temperature: '0.5' }],
    ['top_p', { top_p: 1.5 }],
    ['top_k', { top_k: -2 }],
    ['top_k', { top_k: 1.5 }],
    ['n', { n: 0 }],
    ['n', { n: 17 }],
    ['max_tokens', { max_tokens: 'many' }],
    ['max_tokens', { max_tokens: -1 }],
    ['max_completion_tokens', { max_completion_tokens: 1.5 }],
    ['seed', { seed: 'x' }],
    ['stream', { stream: 'yes' }],
    ['stop', { stop: 5 }],
    ['num_beams', { num_beams: 0 }],
    ['repetition_penalty', { repetition_penalty: 0 }],
    ['presence_penalty', { presence_penalty: 3 }],
    ['model', { model: 7 }],
    ['ignore_eos', { ignore_eos: 'true' }],
    ['stream_options.include_usage', { stream: true, stream_options: { include_usage: 'yes' } }],
  ])('400s a bad %s', async (param, extra) => {
    const { app, runtime } = setup();
    const body = await expect400(await chat(app, { ...ok, ...extra }), param);
    expect(body.error.message).toContain(param);
    expect(runtime.requests).toHaveLength(0);
  });

  it('400s a missing or empty messages list', async () => {
    const { app } = setup();
    await expect400(await chat(app, {}), 'messages');
    await expect400(await chat(app, { messages: [] }), 'messages');
    await expect400(await chat(app, { messages: 'Hi' }), 'messages');
  });

  it('400s a bad message, naming it', async () => {
    const { app, runtime } = setup();
    await expect400(await chat(app, { messages: [user('Hi'), { role: 'wizard', content: 'x' }] }), 'messages[1].role');
    await expect400(await chat(app, { messages: [{ role: 'user', content: 5 }] }), 'messages[0].content');
    await expect400(await chat(app, { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }), 'messages[0].content');
    expect(runtime.requests).toHaveLength(0);
  });

  it('400s a message with neither content nor message', async () => {
    const { app, runtime } = setup();
    const body = await expect400(await chat(app, { messages: [user('Hi'), { role: 'user' }] }), 'messages[1].content');
    expect(body.error.message).toContain('messages[1]');
    await expect400(await chat(app, { messages: [{ role: 'user', content: null, message: null }] }), 'messages[0].content');
    expect(runtime.requests).toHaveLength(0);
  });

  it('400s logit_bias keys that are not token ids', async () => {
    const { app } = setup();
    const res = await chat(app, { ...ok, logit_bias: { hello: 1 } });
    expect(res.status).toBe(400);
    expect((await res.json()).error.param).toMatch(/^logit_bias/);
  });

  it('returns chat logprobs with top alternatives and bytes, streamed and not', async () => {
    const { app, runtime } = setup({ script: { pieces: ['Hi', '!'] } });
    const body = await (await chat(app, { ...ok, logprobs: true, top_logprobs: 1 })).json();
    expect(runtime.requests[0].logprobs).toBe(1);
    expect(body.choices[0].logprobs).toEqual({
      content: [
        { token: 'Hi', logprob: -0.1, bytes: [72, 105], top_logprobs: [{ token: 'alt0', logprob: -1, bytes: [97, 108, 116, 48] }] },
        { token: '!', logprob: -0.2, bytes: [33], top_logprobs: [{ token: 'alt0', logprob: -1, bytes: [97, 108, 116, 48] }] },
      ],
      refusal: null,
    });
    const chunks = await readSse(await chat(app, { ...ok, logprobs: true, stream: true }));
    expect(chunks[1].choices[0].logprobs).toEqual({ content: [{ token: 'Hi', logprob: -0.1, bytes: [72, 105], top_logprobs: [] }], refusal: null });
    expect((await (await chat(app, ok)).json()).choices[0].logprobs).toBeNull();
  });

  it('needs logprobs: true for top_logprobs', async () => {
    const { app } = setup();
    await expect400(await chat(app, { ...ok, top_logprobs: 2 }), 'top_logprobs');
  });

  it.each([
    ['response_format', { response_format: { type: 'json_object' } }],
    ['response_format', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }],
  ])("refuses unsupported '%s' with code unsupported_parameter", async (param, extra) => {
    const { app, runtime } = setup();
    const body = await expect400(await chat(app, { ...ok, ...extra }), param, 'unsupported_parameter');
    expect(body.error.message).toContain(param);
    expect(runtime.requests).toHaveLength(0);
  });

  it('accepts the harmless forms of those fields', async () => {
    const { app } = setup();
    for (const extra of [{ logprobs: false }, { tools: [] }, { response_format: { type: 'text' } }, { tools: null, tool_choice: 'none' }, { user: 'u1' }]) {
      expect((await chat(app, { ...ok, ...extra })).status, JSON.stringify(extra)).toBe(200);
    }
  });

  it('404s an unknown model with model_not_found', async () => {
    const { app } = setup();
    const res = await chat(app, { ...ok, model: 'gpt-4o' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: expect.stringContaining('gpt-4o'), type: 'not_found_error', param: 'model', code: 'model_not_found' },
    });
  });

  it('refuses the embedding model for chat', async () => {
    const { app } = setup({ embeddingModel: 'embed' });
    await expect400(await chat(app, { ...ok, model: 'embed' }), 'model');
  });
});

describe('POST /v1/chat/completions: runtime errors before the stream starts', () => {
  it('keeps a 409 status from the runtime, streamed or not', async () => {
    const { app } = setup({ script: { pieces: [], error: new InferenceError(409, 'Session 3 is busy.', { code: 'session_busy' }) } });
    for (const stream of [false, true]) {
      const res = await chat(app, { messages: [user('Hi')], stream });
      expect(res.status).toBe(409);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toEqual({ error: { message: 'Session 3 is busy.', type: 'conflict_error', param: null, code: 'session_busy' } });
    }
  });

  it('keeps a 429 status and its Retry-After header', async () => {
    const { app } = setup({
      script: { pieces: [], error: new InferenceError(429, 'The queue is full.', { headers: { 'retry-after': '2' } }) },
    });
    const res = await chat(app, { messages: [user('Hi')], stream: true });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect((await res.json()).error).toEqual({ message: 'The queue is full.', type: 'rate_limit_error', param: null, code: null });
  });

  it('keeps a context-length 400', async () => {
    const { app } = setup({
      script: { pieces: [], error: new InferenceError(400, 'too long', { param: 'messages', code: 'context_length_exceeded' }) },
    });
    await expect400(await chat(app, { messages: [user('Hi')] }), 'messages', 'context_length_exceeded');
  });
});

describe('POST /v1/chat/completions: streaming', () => {
  const script = { pieces: ['The', ' capital', ' is', ' Beijing', '.'], promptTokens: 11 };

  it('streams chunks with one id and created, role first, content, and one finish_reason last', async () => {
    let now = 1_700_000_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => (now += 1500));
    const { app } = setup({ script });
    const chunks = await readSse(await chat(app, { messages: [user('Hi')], stream: true }));
    vi.restoreAllMocks();

    expect(chunks.length).toBe(1 + 5 + 1);
    const [first] = chunks;
    expect(first.id).toMatch(/^chatcmpl-[A-Za-z0-9]{22}$/);
    for (const c of chunks) {
      expect(c.id).toBe(first.id);
      expect(c.created).toBe(first.created);
      expect(c.object).toBe('chat.completion.chunk');
      expect(c.model).toBe('mock-model');
      expect(c).not.toHaveProperty('usage');
      expect(c.choices).toHaveLength(1);
      expect(c.choices[0].index).toBe(0);
      expect(c.choices[0].logprobs).toBeNull();
    }
    expect(first.choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(first.choices[0].finish_reason).toBeNull();
    const withFinish = chunks.filter((c) => c.choices[0].finish_reason !== null);
    expect(withFinish).toHaveLength(1);
    expect(withFinish[0]).toBe(chunks.at(-1));
    expect(chunks.at(-1).choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' });
    expect(chunks.slice(1, -1).map((c) => c.choices[0].delta)).toEqual(script.pieces.map((content) => ({ content })));
  });

  it('streams the same content as the non-streamed answer', async () => {
    const { app } = setup({ script });
    const full: Json = await (await chat(app, { messages: [user('Hi')] })).json();
    const chunks = await readSse(await chat(app, { messages: [user('Hi')], stream: true }));
    const streamed = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    expect(streamed).toBe('The capital is Beijing.');
    expect(streamed).toBe(full.choices[0].message.content);
    expect(chunks.at(-1).choices[0].finish_reason).toBe(full.choices[0].finish_reason);
  });

  it('streams finish_reason length when max_tokens cuts the answer', async () => {
    const { app } = setup({ script });
    const chunks = await readSse(await chat(app, { messages: [user('Hi')], stream: true, max_tokens: 2 }));
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('The capital');
    expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
  });

  it('adds one usage chunk with empty choices before [DONE] when include_usage is set, usage null elsewhere', async () => {
    const { app } = setup({ script });
    const chunks = await readSse(await chat(app, { messages: [user('Hi')], stream: true, stream_options: { include_usage: true } }));
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 });
    expect(last.id).toBe(chunks[0].id);
    expect(last.created).toBe(chunks[0].created);
    expect(last.object).toBe('chat.completion.chunk');
    const others = chunks.slice(0, -1);
    expect(others.length).toBe(7);
    for (const c of others) {
      expect(c).toHaveProperty('usage', null);
      expect(c.choices).toHaveLength(1);
    }
    expect(chunks.filter((c) => c.choices.length === 0)).toHaveLength(1);
    expect(others.at(-1).choices[0].finish_reason).toBe('stop');
  });

  it('sends no usage at all when include_usage is false', async () => {
    const { app } = setup({ script });
    const chunks = await readSse(await chat(app, { messages: [user('Hi')], stream: true, stream_options: { include_usage: false } }));
    expect(chunks.every((c) => !('usage' in c) && c.choices.length === 1)).toBe(true);
  });

  it('streams n=2 choices with indexes 0 and 1, each with a role chunk and one finish', async () => {
    const { app } = setup({ script: { pieces: ['x', 'y'] } });
    const chunks = await readSse(await chat(app, { messages: [user('Hi')], stream: true, n: 2 }));
    expect(new Set(chunks.map((c) => c.choices[0].index))).toEqual(new Set([0, 1]));
    for (const index of [0, 1]) {
      const mine = chunks.filter((c) => c.choices[0].index === index);
      expect(mine[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
      expect(mine.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('xy');
      const finishes = mine.filter((c) => c.choices[0].finish_reason !== null);
      expect(finishes).toHaveLength(1);
      expect(finishes[0]).toBe(mine.at(-1));
    }
  });

  it('writes an error after the stream started in band, then [DONE]', async () => {
    const onError = vi.fn();
    const { app, runtime } = setup(
      { script: { pieces: ['a', 'b', 'c'], failAfter: { pieces: 2, error: new InferenceError(500, 'The engine crashed.') } } },
      onError,
    );
    const res = await chat(app, { messages: [user('Hi')], stream: true });
    expect(res.status).toBe(200);
    const raw = await res.text();
    expect(raw.endsWith('data: {"error":{"message":"The engine crashed.","type":"server_error","param":null,"code":null}}\n\ndata: [DONE]\n\n')).toBe(true);
    const chunks = await readSse(new Response(raw, { headers: res.headers }));
    expect(chunks.slice(0, -1).map((c) => c.choices[0].delta.content ?? '').join('')).toBe('ab');
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(chunks.at(-1)).toEqual({ error: { message: 'The engine crashed.', type: 'server_error', param: null, code: null } });
    expect(onError).not.toHaveBeenCalled();
    expect(runtime.cancelled).toBe(1);
  });

  it('hides an unknown in-stream error behind a generic message and reports it', async () => {
    const onError = vi.fn();
    const boom = new Error('secret stack detail');
    const { app } = setup({ script: { pieces: ['a', 'b'], failAfter: { pieces: 1, error: boom } } }, onError);
    const raw = await (await chat(app, { messages: [user('Hi')], stream: true })).text();
    expect(raw).not.toContain('secret');
    const chunks = await readSse(new Response(raw, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' } }));
    expect(chunks.at(-1).error).toEqual({ message: expect.any(String), type: 'server_error', param: null, code: null });
    expect(onError).toHaveBeenCalledWith(boom);
  });
});

describe('POST /v1/chat/completions: cancellation', () => {
  const slow = { pieces: Array.from({ length: 100 }, (_, i) => `t${i} `), delayMs: 5 };

  it('cancelling the response body stops the generation', async () => {
    const onError = vi.fn();
    const { app, runtime } = setup({ script: { ...slow, delayMs: 20 } }, onError);
    const res = await chat(app, { messages: [user('Hi')], stream: true });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('t1 ')) text += decoder.decode((await reader.read()).value);
    // Let the stream start pulling the next piece, so the cancel lands while a read is in flight.
    await new Promise((resolve) => setTimeout(resolve, 5));
    await reader.cancel();
    await vi.waitFor(() => expect(runtime.cancelled).toBe(1), { timeout: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(runtime.cancelled).toBe(1);
    // A client going away is not a server error.
    expect(onError).not.toHaveBeenCalled();
  });

  it('res.body.cancel() right after the headers stops the generation', async () => {
    const { app, runtime } = setup({ script: slow });
    const res = await chat(app, { messages: [user('Hi')], stream: true });
    await res.body!.cancel();
    await vi.waitFor(() => expect(runtime.cancelled).toBe(1), { timeout: 2000 });
  });

  it("aborting the request's signal stops the generation", async () => {
    const { app, runtime } = setup({ script: slow });
    const controller = new AbortController();
    const res = await chat(app, { messages: [user('Hi')], stream: true }, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    controller.abort();
    // The stream winds down on its own once the runtime stops.
    const started = Date.now();
    while (!(await reader.read().catch(() => ({ done: true }))).done) {
      if (Date.now() - started > 2000) throw new Error('stream did not end after abort');
    }
    expect(runtime.cancelled).toBe(1);
    expect(runtime.requests[0].signal?.aborted).toBe(true);
  });

  it('aborting a non-streamed request stops the generation too', async () => {
    const { app, runtime } = setup({ script: slow });
    const controller = new AbortController();
    const pending = chat(app, { messages: [user('Hi')] }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await pending.catch(() => undefined);
    await vi.waitFor(() => expect(runtime.cancelled).toBe(1), { timeout: 2000 });
  });
});
