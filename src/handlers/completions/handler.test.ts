import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp, type App } from '../../app/create-app.js';
import { InferenceError } from '../../errors.js';
import { MockRuntime, type MockRuntimeOptions } from '../../testing/mock-runtime.js';
import { type Json, expect400, postJson, readSse } from '../../../test/helpers/handler-requests.js';

const complete = (app: App, body: unknown, init: RequestInit = {}) => postJson(app, 'http://test/v1/completions', body, init);

function setup(options: MockRuntimeOptions = {}, onError?: (error: unknown) => void): { app: App; runtime: MockRuntime } {
  const runtime = new MockRuntime(options);
  return { app: createApp({ runtime, onError }), runtime };
}

const textOf = (chunks: Json[], index: number) =>
  chunks
    .filter((c) => c.choices.length > 0 && c.choices[0].index === index)
    .map((c) => c.choices[0].text)
    .join('');

afterEach(() => {
  vi.restoreAllMocks();
});

describe('POST /v1/completions: Chinese-LLaMA-Alpaca seed requests', () => {
  it('answers the basic example in OpenAI format', async () => {
    const { app, runtime } = setup({ script: { pieces: ['The capital', ' of China', ' is Beijing.'] } });
    const res = await complete(app, { prompt: 'Tell me where the capital of China is' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body: Json = await res.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^cmpl-[A-Za-z0-9]{22}$/),
      object: 'text_completion',
      created: expect.any(Number),
      model: 'mock-model',
      choices: [{ index: 0, text: 'The capital of China is Beijing.', logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11, prompt_tokens_details: { cached_tokens: 0 } },
    });
    expect(Math.abs(body.created - Date.now() / 1000)).toBeLessThan(5);
    expect(runtime.requests).toHaveLength(1);
    const r = runtime.requests[0];
    expect(r.input).toEqual({ kind: 'text', text: 'Tell me where the capital of China is' });
    expect(r.template).toBe('completion');
    expect(r.defaults).toEqual({ temperature: 1, topP: 1 });
    expect(r.maxTokens).toBeUndefined();
    expect(r.n).toBe(1);
    expect(r.stop).toEqual([]);
    expect(r.ignoreEos).toBe(false);
    expect(Object.values(r.sampling).filter((v) => v !== undefined)).toEqual([]);
  });

  it('answers the decoding-parameters example and maps its parameters', async () => {
    const { app, runtime } = setup();
    const res = await complete(app, {
      prompt: 'Tell me the strengths and weaknesses of China and the United States respectively',
      max_tokens: 90,
      temperature: 0.7,
      num_beams: 4,
      top_k: 40,
    });
    expect(res.status).toBe(200);
    const body: Json = await res.json();
    expect(body.object).toBe('text_completion');
    expect(body.choices).toEqual([{ index: 0, text: 'Hello world', logprobs: null, finish_reason: 'stop' }]);
    const r = runtime.requests[0];
    expect(r.maxTokens).toBe(90);
    expect(r.sampling).toEqual({ temperature: 0.7, numBeams: 4, topK: 40 });
    expect(r.template).toBe('completion');
  });
});

describe('POST /v1/completions: request mapping', () => {
  it('maps every sampling field', async () => {
    const { app, runtime } = setup();
    const res = await complete(app, {
      prompt: 'x',
      temperature: 0,
      top_p: 0.5,
      top_k: -1,
      min_p: 0.1,
      repetition_penalty: 1.3,
      presence_penalty: 1,
      frequency_penalty: 0.25,
      num_beams: 2,
      length_penalty: 1.5,
      seed: 7,
      stop: '\n\n',
      stop_token_ids: [0],
      max_tokens: 12,
      n: 3,
      logit_bias: { '1': 5, '22': -1 },
      ignore_eos: true,
      min_tokens: 4,
      user: 'someone',
    });
    expect(res.status).toBe(200);
    const r = runtime.requests[0];
    expect(r.sampling).toEqual({
      temperature: 0,
      topP: 0.5,
      topK: 0,
      minP: 0.1,
      repetitionPenalty: 1.3,
      presencePenalty: 1,
      frequencyPenalty: 0.25,
      numBeams: 2,
      lengthPenalty: 1.5,
      seed: 7,
      logitBias: { 1: 5, 22: -1 },
    });
    expect(r.stop).toEqual(['\n\n']);
    expect(r.stopTokenIds).toEqual([0]);
    expect(r.maxTokens).toBe(12);
    expect(r.n).toBe(3);
    expect(r.ignoreEos).toBe(true);
    expect(r.minTokens).toBe(4);
  });

  it('passes top_k 0 and positive values through', async () => {
    const { app, runtime } = setup();
    await complete(app, { prompt: 'x', top_k: 0 });
    await complete(app, { prompt: 'x', top_k: 5 });
    expect(runtime.requests.map((r) => r.sampling.topK)).toEqual([0, 5]);
  });

  it('accepts max_tokens 0', async () => {
    const { app, runtime } = setup();
    const body: Json = await (await complete(app, { prompt: 'x', max_tokens: 0 })).json();
    expect(runtime.requests[0].maxTokens).toBe(0);
    expect(body.choices[0].text).toBe('');
    expect(body.choices[0].finish_reason).toBe('length');
  });

  it('takes token-id prompts', async () => {
    const { app, runtime } = setup();
    const res = await complete(app, { prompt: [1, 2, 3] });
    expect(res.status).toBe(200);
    expect(runtime.requests).toHaveLength(1);
    expect(runtime.requests[0].input).toEqual({ kind: 'tokens', tokens: [1, 2, 3] });
    expect(runtime.requests[0].template).toBe('completion');
  });

  it('makes one engine request per prompt in a list, text or tokens', async () => {
    const { app, runtime } = setup();
    await complete(app, { prompt: ['first prompt', 'second'] });
    await complete(app, { prompt: [[5, 6], [7]] });
    expect(runtime.requests.map((r) => r.input)).toEqual([
      { kind: 'text', text: 'first prompt' },
      { kind: 'text', text: 'second' },
      { kind: 'tokens', tokens: [5, 6] },
      { kind: 'tokens', tokens: [7] },
    ]);
  });

  it('answers with the requested model', async () => {
    const { app, runtime } = setup({ model: 'alpaca-7b' });
    const body: Json = await (await complete(app, { model: 'alpaca-7b', prompt: 'x' })).json();
    expect(body.model).toBe('alpaca-7b');
    expect(runtime.requests[0].model).toBe('alpaca-7b');
  });

  it('accepts best_of equal to n', async () => {
    const { app } = setup();
    expect((await complete(app, { prompt: 'x', best_of: 1 })).status).toBe(200);
    expect((await complete(app, { prompt: 'x', best_of: 2, n: 2 })).status).toBe(200);
    expect((await complete(app, { prompt: 'x', suffix: '' })).status).toBe(200);
    expect((await complete(app, { prompt: 'x', logprobs: null, suffix: null })).status).toBe(200);
  });
});

describe('POST /v1/completions: non-streamed responses', () => {
  it('gives choices p*n+k for several prompts and n, with summed usage', async () => {
    const { app } = setup({ script: (r) => ({ pieces: r.input.kind === 'text' ? [r.input.text.toUpperCase(), '!'] : ['?'] }) });
    const body: Json = await (await complete(app, { prompt: ['a b', 'c'], n: 2 })).json();
    expect(body.choices).toEqual([
      { index: 0, text: 'A B!', logprobs: null, finish_reason: 'stop' },
      { index: 1, text: 'A B!', logprobs: null, finish_reason: 'stop' },
      { index: 2, text: 'C!', logprobs: null, finish_reason: 'stop' },
      { index: 3, text: 'C!', logprobs: null, finish_reason: 'stop' },
    ]);
    expect(body.usage).toEqual({ prompt_tokens: 3, completion_tokens: 8, total_tokens: 11, prompt_tokens_details: { cached_tokens: 0 } });
  });

  it('puts the prompt text first with echo', async () => {
    const { app } = setup({ script: { pieces: [' there'] } });
    const body: Json = await (await complete(app, { prompt: ['Hello', 'Bye'], echo: true })).json();
    expect(body.choices.map((c: Json) => c.text)).toEqual(['Hello there', 'Bye there']);
  });

  it("reports finish_reason 'length' when max_tokens cuts the text", async () => {
    const { app } = setup({ script: { pieces: ['a', 'b', 'c'] } });
    const body: Json = await (await complete(app, { prompt: 'x', max_tokens: 2 })).json();
    expect(body.choices[0]).toEqual({ index: 0, text: 'ab', logprobs: null, finish_reason: 'length' });
    expect(body.usage.completion_tokens).toBe(2);
  });
});

describe('POST /v1/completions: validation', () => {
  it.each([
    ['temperature', { temperature: 3 }],
    ['temperature', { temperature: 'hot' }],
    ['top_p', { top_p: 1.5 }],
    ['top_p', { top_p: -0.1 }],
    ['top_k', { top_k: -5 }],
    ['n', { n: 0 }],
    ['n', { n: 2.5 }],
    ['max_tokens', { max_tokens: '10' }],
    ['max_tokens', { max_tokens: -1 }],
    ['echo', { echo: 'yes' }],
    ['seed', { seed: 1.5 }],
    ['stop', { stop: [1, 2] }],
    ['stop', { stop: Array.from({ length: 33 }, (_, i) => `s${i}`) }],
    ['min_tokens', { min_tokens: -1 }],
    ['num_beams', { num_beams: 17 }],
    ['repetition_penalty', { repetition_penalty: -1 }],
    ['stream', { stream: 1 }],
  ])('400s a bad %s', async (param, extra) => {
    const { app, runtime } = setup();
    const body = await expect400(await complete(app, { prompt: 'x', ...extra }), param);
    expect(body.error.message).toContain(param);
    expect(runtime.requests).toHaveLength(0);
  });

  it.each([
    ['missing', {}, 'prompt'],
    ['empty list', { prompt: [] }, 'prompt'],
    ['a number', { prompt: 5 }, 'prompt'],
    ['null', { prompt: null }, 'prompt'],
    ['mixed list', { prompt: ['a', [1]] }, 'prompt'],
    ['negative token id', { prompt: [1, -2] }, 'prompt[1]'],
    ['empty token list in a list', { prompt: [[1], []] }, 'prompt[1]'],
  ])('400s a %s prompt', async (_name, body, param) => {
    const { app, runtime } = setup();
    await expect400(await complete(app, body), param);
    expect(runtime.requests).toHaveLength(0);
  });

  it('best_of generates more candidates and returns the n with the highest mean logprob', async () => {
    // Choice 2 is the most likely, then choice 0.
    const { app, runtime } = setup({ script: { pieces: ['a', 'b'], logprob: (choice) => [-0.5, -0.9, -0.1][choice] } });
    const body = await (await complete(app, { prompt: 'x', best_of: 3, n: 2 })).json();
    expect(runtime.requests[0]).toMatchObject({ n: 3, logprobs: 0 });
    expect(body.choices.map((c: Json) => [c.index, c.logprobs])).toEqual([[0, null], [1, null]]);
    const withLogprobs = await (await complete(app, { prompt: 'x', best_of: 3, logprobs: 1 })).json();
    expect(withLogprobs.choices).toHaveLength(1);
    expect(withLogprobs.choices[0].logprobs.token_logprobs).toEqual([-0.1, -0.1]);
    expect(withLogprobs.usage.completion_tokens).toBe(6); // every candidate's tokens count
  });

  it.each([
    [{ best_of: 1, n: 2 }, 'best_of must be at least n'],
    [{ best_of: 2, stream: true }, 'cannot be combined with stream'],
    [{ best_of: 2, num_beams: 2 }, 'cannot be combined with num_beams'],
  ])('refuses best_of %j', async (extra, message) => {
    const { app } = setup();
    const body = await expect400(await complete(app, { prompt: 'x', ...extra }), 'best_of');
    expect(body.error.message).toContain(message);
  });

  it('returns integer logprobs: tokens, token_logprobs, top_logprobs and text offsets', async () => {
    const { app, runtime } = setup({ script: { pieces: ['Bei', 'jing'] } });
    const body = await (await complete(app, { prompt: 'x', logprobs: 2 })).json();
    expect(runtime.requests[0].logprobs).toBe(2);
    expect(body.choices[0].logprobs).toEqual({
      tokens: ['Bei', 'jing'],
      token_logprobs: [-0.1, -0.2],
      top_logprobs: [{ alt0: -1, alt1: -2 }, { alt0: -1, alt1: -2 }],
      text_offset: [0, 3],
    });
    const chunks = await readSse(await complete(app, { prompt: 'x', logprobs: 0, stream: true }));
    expect(chunks[1].choices[0].logprobs).toEqual({ tokens: ['jing'], token_logprobs: [-0.2], top_logprobs: [{}], text_offset: [3] });
  });

  it.each([
    ['suffix', { suffix: 'the end' }],
    ['echo', { echo: true, logprobs: 1 }],
  ])("refuses unsupported '%s' with code unsupported_parameter", async (param, extra) => {
    const { app, runtime } = setup();
    const body = await expect400(await complete(app, { prompt: 'x', ...extra }), param, 'unsupported_parameter');
    expect(body.error.message).toContain(param);
    expect(runtime.requests).toHaveLength(0);
  });

  it('404s an unknown model with model_not_found', async () => {
    const { app } = setup();
    const res = await complete(app, { model: 'text-davinci-003', prompt: 'x' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: expect.stringContaining('text-davinci-003'), type: 'not_found_error', param: 'model', code: 'model_not_found' },
    });
  });
});

describe('POST /v1/completions: runtime errors before the stream starts', () => {
  it('keeps a 409 status, streamed or not', async () => {
    const { app } = setup({ script: { pieces: [], error: new InferenceError(409, 'busy', { code: 'busy' }) } });
    for (const stream of [false, true]) {
      const res = await complete(app, { prompt: 'x', stream });
      expect(res.status).toBe(409);
      expect(await res.json()).toEqual({ error: { message: 'busy', type: 'conflict_error', param: null, code: 'busy' } });
    }
  });

  it('keeps a 429 with its Retry-After header', async () => {
    const { app } = setup({ script: { pieces: [], error: new InferenceError(429, 'Queue full.', { headers: { 'retry-after': '3' } }) } });
    const res = await complete(app, { prompt: 'x', stream: true });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect((await res.json()).error.type).toBe('rate_limit_error');
  });

  it('cancels the prompts that started when another prompt of the list fails to start', async () => {
    const { app, runtime } = setup({
      script: (r) =>
        r.input.kind === 'text' && r.input.text === 'bad'
          ? { pieces: [], error: new InferenceError(400, 'This prompt is too long.', { param: 'prompt', code: 'context_length_exceeded' }) }
          : { pieces: ['a'] },
    });
    const res = await complete(app, { prompt: ['good', 'bad', 'also good'] });
    await expect400(res, 'prompt', 'context_length_exceeded');
    expect(runtime.cancelled).toBe(2);
  });
});

describe('POST /v1/completions: streaming', () => {
  const script = { pieces: ['Bei', 'jing', '.'], promptTokens: 4 };

  it('streams text_completion chunks with one id and created and one final finish_reason', async () => {
    let now = 1_700_000_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => (now += 1500));
    const { app } = setup({ script });
    const chunks = await readSse(await complete(app, { prompt: 'Capital?', stream: true }));
    vi.restoreAllMocks();

    expect(chunks).toHaveLength(4);
    const [first] = chunks;
    expect(first.id).toMatch(/^cmpl-[A-Za-z0-9]{22}$/);
    for (const c of chunks) {
      expect(c.id).toBe(first.id);
      expect(c.created).toBe(first.created);
      expect(c.object).toBe('text_completion');
      expect(c.model).toBe('mock-model');
      expect(c).not.toHaveProperty('usage');
      expect(c.choices).toHaveLength(1);
    }
    expect(chunks.map((c) => c.choices[0])).toEqual([
      { index: 0, text: 'Bei', logprobs: null, finish_reason: null },
      { index: 0, text: 'jing', logprobs: null, finish_reason: null },
      { index: 0, text: '.', logprobs: null, finish_reason: null },
      { index: 0, text: '', logprobs: null, finish_reason: 'stop' },
    ]);
  });

  it('streams the same text as the non-streamed answer', async () => {
    const { app } = setup({ script });
    const full: Json = await (await complete(app, { prompt: 'Capital?' })).json();
    const chunks = await readSse(await complete(app, { prompt: 'Capital?', stream: true }));
    expect(textOf(chunks, 0)).toBe(full.choices[0].text);
    expect(textOf(chunks, 0)).toBe('Beijing.');
  });

  it('adds one usage chunk with empty choices when include_usage is set, usage null elsewhere', async () => {
    const { app } = setup({ script });
    const chunks = await readSse(await complete(app, { prompt: ['a', 'b'], stream: true, stream_options: { include_usage: true } }));
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.object).toBe('text_completion');
    expect(last.id).toBe(chunks[0].id);
    expect(last.usage).toEqual({ prompt_tokens: 8, completion_tokens: 6, total_tokens: 14, prompt_tokens_details: { cached_tokens: 0 } });
    for (const c of chunks.slice(0, -1)) {
      expect(c).toHaveProperty('usage', null);
      expect(c.choices).toHaveLength(1);
    }
    expect(chunks.filter((c) => c.choices.length === 0)).toHaveLength(1);
  });

  it('sends the prompt text first with echo', async () => {
    const { app } = setup({ script });
    const chunks = await readSse(await complete(app, { prompt: 'Capital?', stream: true, echo: true }));
    expect(chunks[0].choices[0]).toEqual({ index: 0, text: 'Capital?', logprobs: null, finish_reason: null });
    expect(textOf(chunks, 0)).toBe('Capital?Beijing.');
  });

  it('streams several prompts and n as choice indexes p*n+k, each finished exactly once', async () => {
    const { app } = setup({ script: (r) => ({ pieces: [r.input.kind === 'text' ? r.input.text : '?', '.'], delayMs: 1 }) });
    const chunks = await readSse(await complete(app, { prompt: ['x', 'y', 'z'], n: 2, stream: true, echo: true }));
    const expected = ['x', 'x', 'y', 'y', 'z', 'z'];
    expect([...new Set(chunks.map((c) => c.choices[0].index))].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expected.forEach((p, i) => {
      expect(textOf(chunks, i)).toBe(`${p}${p}.`);
      const mine = chunks.filter((c) => c.choices[0].index === i);
      const finishes = mine.filter((c) => c.choices[0].finish_reason !== null);
      expect(finishes).toHaveLength(1);
      expect(finishes[0]).toBe(mine.at(-1));
      expect(finishes[0].choices[0].finish_reason).toBe('stop');
    });
  });

  it('writes an error after the stream started in band, then [DONE]', async () => {
    const { app } = setup({ script: { pieces: ['a', 'b'], failAfter: { pieces: 1, error: new InferenceError(503, 'Shutting down.') } } });
    const res = await complete(app, { prompt: 'x', stream: true });
    expect(res.status).toBe(200);
    const raw = await res.text();
    const blocks = raw.split('\n\n');
    expect(blocks.slice(-3)).toEqual([
      'data: {"error":{"message":"Shutting down.","type":"service_unavailable","param":null,"code":null}}',
      'data: [DONE]',
      '',
    ]);
    expect(JSON.parse(blocks[0].slice(6)).choices[0].text).toBe('a');
    expect(blocks).toHaveLength(4);
  });
});

describe('POST /v1/completions: cancellation', () => {
  const slow = { pieces: Array.from({ length: 100 }, () => 'x'), delayMs: 5 };

  it('cancelling the body mid-stream stops the generation', async () => {
    const { app, runtime } = setup({ script: slow });
    const res = await complete(app, { prompt: 'x', stream: true });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    await vi.waitFor(() => expect(runtime.cancelled).toBe(1), { timeout: 2000 });
  });

  it('cancelling during the echo chunks stops every prompt', async () => {
    const { app, runtime } = setup({ script: slow });
    const res = await complete(app, { prompt: ['a', 'b'], echo: true, stream: true });
    await res.body!.cancel();
    await vi.waitFor(() => expect(runtime.cancelled).toBe(2), { timeout: 2000 });
  });

  it("aborting the request's signal stops the generation", async () => {
    const { app, runtime } = setup({ script: slow });
    const controller = new AbortController();
    const res = await complete(app, { prompt: 'x', stream: true }, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const started = Date.now();
    while (!(await reader.read()).done) {
      if (Date.now() - started > 2000) throw new Error('stream did not end after abort');
    }
    expect(runtime.cancelled).toBe(1);
  });
});
