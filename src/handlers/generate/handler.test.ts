import { describe, expect, it, vi } from 'vitest';
import { createApp, type App } from '../../app/create-app.js';
import { InferenceError } from '../../errors.js';
import type { GenerationEvent } from '../../runtime/types.js';
import { MockRuntime, type MockRuntimeOptions } from '../../testing/mock-runtime.js';
import { type Json, expect400 } from '../../../test/helpers/handler-requests.js';

function setup(options: MockRuntimeOptions = {}): { app: App; runtime: MockRuntime } {
  const runtime = new MockRuntime({ model: 'internlm-chat-7b', ...options });
  return { app: createApp({ runtime }), runtime };
}

function generate(app: App, body: unknown, init: RequestInit = {}): Promise<Response> {
  return app.fetch(
    new Request('http://test/generate', {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      ...init,
    }),
  );
}

/** Reads an NDJSON body the way lmdeploy's Python client does: split on '\n', skip empty lines, one JSON object each. */
async function readNdjson(res: Response): Promise<Json[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
  const raw = await res.text();
  expect(raw.endsWith('\n')).toBe(true);
  expect(raw).not.toContain('data:');
  expect(raw).not.toContain('[DONE]');
  const lines = raw.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(raw.split('\n').length - 1);
  return lines.map((line) => JSON.parse(line));
}

describe('POST /generate: lmdeploy seed requests', () => {
  it('answers the cURL example', async () => {
    const { app, runtime } = setup({ script: { pieces: ['I am', ' fine', '.'] } });
    const res = await generate(app, { prompt: 'Hello! How are you?', session_id: 1, sequence_start: true, sequence_end: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body: Json = await res.json();
    expect(body).toMatchObject({ text: 'I am fine.', tokens: 3, finish_reason: 'stop' });
    expect(runtime.requests).toHaveLength(1);
    const r = runtime.requests[0];
    expect(r.session).toEqual({ id: '1', start: true, end: true });
    expect(r.input).toEqual({ kind: 'text', text: 'Hello! How are you?' });
    expect(r.maxTokens).toBeUndefined();
    expect(r.n).toBe(1);
  });

  it("answers the Python streaming client's payload line by line", async () => {
    const { app, runtime } = setup({ script: { pieces: ['Fine', ',', ' thanks'] } });
    const res = await app.fetch(
      new Request('http://test/generate', {
        method: 'POST',
        headers: { 'User-Agent': 'Test Client', 'content-type': 'application/json' },
        body: JSON.stringify({
          prompt: 'Hi, how are you?',
          stream: true,
          session_id: 0,
          request_output_len: 512,
          sequence_start: true,
          sequence_end: true,
          ignore_eos: false,
        }),
      }),
    );
    const lines = await readNdjson(res);
    let output = '';
    for (const data of lines) {
      expect(typeof data.text).toBe('string');
      expect(typeof data.tokens).toBe('number');
      output += data.text;
    }
    expect(output).toBe('Fine, thanks');
    const r = runtime.requests[0];
    expect(r.session).toEqual({ id: '0', start: true, end: true });
    expect(r.maxTokens).toBe(512);
    expect(r.ignoreEos).toBe(false);
  });
});

describe('POST /generate: request mapping', () => {
  it("uses lmdeploy's defaults: temperature 0.8, top_p 0.8, top_k 40, output up to the context", async () => {
    const { app, runtime } = setup();
    await generate(app, { prompt: 'Hi' });
    const r = runtime.requests[0];
    expect(r.defaults).toEqual({ temperature: 0.8, topP: 0.8, topK: 40 });
    expect(r.maxTokens).toBeUndefined();
    expect(r.template).toBeUndefined();
    expect(r.stop).toEqual([]);
    expect(r.ignoreEos).toBe(false);
    expect(Object.values(r.sampling).filter((v) => v !== undefined)).toEqual([]);
  });

  it('maps the sampling fields', async () => {
    const { app, runtime } = setup();
    await generate(app, {
      prompt: 'Hi',
      temperature: 0.1,
      top_p: 0.95,
      top_k: -1,
      repetition_penalty: 1.02,
      seed: 99,
      stop: 'User:',
      stop_token_ids: [92542],
      ignore_eos: true,
      min_tokens: 2,
      logit_bias: { '7': 1 },
    });
    const r = runtime.requests[0];
    expect(r.sampling).toEqual({ temperature: 0.1, topP: 0.95, topK: 0, repetitionPenalty: 1.02, seed: 99, logitBias: { 7: 1 } });
    expect(r.stop).toEqual(['User:']);
    expect(r.stopTokenIds).toEqual([92542]);
    expect(r.ignoreEos).toBe(true);
    expect(r.minTokens).toBe(2);
    expect(r.n).toBe(1);
  });

  it('maps request_output_len, then max_tokens, to maxTokens', async () => {
    const { app, runtime } = setup();
    await generate(app, { prompt: 'Hi', request_output_len: 3 });
    await generate(app, { prompt: 'Hi', max_tokens: 7 });
    await generate(app, { prompt: 'Hi', request_output_len: 5, max_tokens: 9 });
    await generate(app, { prompt: 'Hi', request_output_len: null });
    expect(runtime.requests.map((r) => r.maxTokens)).toEqual([3, 7, 5, undefined]);
  });

  it.each([
    ['no session_id', {}, undefined],
    ['session_id -1', { session_id: -1 }, undefined],
    ['session_id -5', { session_id: -5 }, undefined],
    ['session_id 1', { session_id: 1 }, { id: '1', start: true, end: false }],
    ['session_id 0', { session_id: 0 }, { id: '0', start: true, end: false }],
    ['sequence_start false', { session_id: 1, sequence_start: false }, { id: '1', start: false, end: false }],
    ['sequence_start false, renew_session', { session_id: 1, sequence_start: false, renew_session: true }, { id: '1', start: true, end: false }],
    ['renew_session false', { session_id: 2, sequence_start: false, renew_session: false }, { id: '2', start: false, end: false }],
    ['sequence_end true', { session_id: 3, sequence_end: true }, { id: '3', start: true, end: true }],
    ['continuing turn', { session_id: 4, sequence_start: false, sequence_end: false }, { id: '4', start: false, end: false }],
    ['large id', { session_id: 123456789 }, { id: '123456789', start: true, end: false }],
  ])('session mapping: %s', async (_name, extra, session) => {
    const { app, runtime } = setup();
    expect((await generate(app, { prompt: 'Hi', ...extra })).status).toBe(200);
    expect(runtime.requests[0].session).toEqual(session);
  });

  it('sends a one-off string prompt as a user message, and a session prompt as text', async () => {
    const { app, runtime } = setup();
    await generate(app, { prompt: 'one-off' });
    await generate(app, { prompt: 'turn', session_id: 8 });
    expect(runtime.requests[0].input).toEqual({ kind: 'messages', messages: [{ role: 'user', content: 'one-off' }] });
    expect(runtime.requests[1].input).toEqual({ kind: 'text', text: 'turn' });
  });

  it('takes a whole chat history as the prompt', async () => {
    const { app, runtime } = setup();
    const messages = [
      { role: 'system', content: 'Be nice.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'How are you?' },
    ];
    expect((await generate(app, { prompt: messages })).status).toBe(200);
    expect(runtime.requests[0].input).toEqual({ kind: 'messages', messages });
  });

  it("accepts stop: false and stop lists, refuses lmdeploy's stop: true", async () => {
    const { app, runtime } = setup();
    expect((await generate(app, { prompt: 'Hi', stop: false })).status).toBe(200);
    expect((await generate(app, { prompt: 'Hi', stop: ['a', 'b'] })).status).toBe(200);
    expect(runtime.requests.map((r) => r.stop)).toEqual([[], ['a', 'b']]);
    const body = await expect400(await generate(app, { prompt: 'Hi', stop: true }), 'stop');
    expect(body.error.message).toMatch(/cancel/);
    expect(runtime.requests).toHaveLength(2);
  });

  it('accepts the other lmdeploy fields', async () => {
    const { app } = setup();
    const res = await generate(app, { prompt: 'Hi', interactive_mode: false, renew_session: false, model: 'internlm-chat-7b' });
    expect(res.status).toBe(200);
  });
});

describe('POST /generate: non-streamed', () => {
  it('returns text, the number of tokens and the finish reason', async () => {
    const { app } = setup({ script: { pieces: ['a', 'b', 'c', 'd'], promptTokens: 6 } });
    const body: Json = await (await generate(app, { prompt: 'Hi' })).json();
    expect(body).toEqual({ text: 'abcd', tokens: 4, finish_reason: 'stop', input_tokens: 6 });
  });

  it("reports finish_reason 'length' at request_output_len", async () => {
    const { app } = setup({ script: { pieces: ['a', 'b', 'c', 'd'] } });
    const body: Json = await (await generate(app, { prompt: 'Hi', request_output_len: 2 })).json();
    expect(body).toMatchObject({ text: 'ab', tokens: 2, finish_reason: 'length' });
  });
});

describe('POST /generate: streaming', () => {
  it('streams NDJSON with increasing tokens and the finish reason on the last line only', async () => {
    const { app } = setup({ script: { pieces: ['The', ' sky', ' is', ' blue'] } });
    const lines = await readNdjson(await generate(app, { prompt: 'Hi', stream: true }));
    expect(lines).toEqual([
      { text: 'The', tokens: 1, finish_reason: null },
      { text: ' sky', tokens: 2, finish_reason: null },
      { text: ' is', tokens: 3, finish_reason: null },
      { text: ' blue', tokens: 4, finish_reason: null },
      { text: '', tokens: 4, finish_reason: 'stop' },
    ]);
  });

  it('streams the same text and token count as the non-streamed answer', async () => {
    const { app } = setup({ script: { pieces: ['x', 'y', 'z'] } });
    const full: Json = await (await generate(app, { prompt: 'Hi', request_output_len: 2 })).json();
    const lines = await readNdjson(await generate(app, { prompt: 'Hi', request_output_len: 2, stream: true }));
    expect(lines.map((l) => l.text).join('')).toBe(full.text);
    expect(lines.at(-1)).toEqual({ text: '', tokens: full.tokens, finish_reason: 'length' });
    for (let i = 1; i < lines.length - 1; i++) expect(lines[i].tokens).toBeGreaterThan(lines[i - 1].tokens);
    expect(lines.slice(0, -1).every((l) => l.finish_reason === null)).toBe(true);
  });

  it('keeps counting tokens of pieces that produced no text yet', async () => {
    const { app } = setup({ script: { pieces: ['a', '', 'b'] } });
    const lines = await readNdjson(await generate(app, { prompt: 'Hi', stream: true }));
    expect(lines).toEqual([
      { text: 'a', tokens: 1, finish_reason: null },
      { text: 'b', tokens: 3, finish_reason: null },
      { text: '', tokens: 3, finish_reason: 'stop' },
    ]);
  });

  it('counts every token of a multi-token delta', async () => {
    const runtime = new MockRuntime();
    runtime.generate = async function* (): AsyncGenerator<GenerationEvent> {
      yield { type: 'start', promptTokens: 2, promptText: 'Hi' };
      yield { type: 'delta', index: 0, text: 'ab', tokens: [11, 12] };
      yield { type: 'delta', index: 0, text: '', tokens: [13] };
      yield { type: 'delta', index: 0, text: 'c', tokens: [14] };
      yield { type: 'finish', index: 0, reason: 'stop' };
      yield { type: 'usage', promptTokens: 2, completionTokens: 4 };
    };
    const app = createApp({ runtime });
    expect(await (await generate(app, { prompt: 'Hi' })).json()).toEqual({ text: 'abc', tokens: 4, finish_reason: 'stop', input_tokens: 2 });
    expect(await readNdjson(await generate(app, { prompt: 'Hi', stream: true }))).toEqual([
      { text: 'ab', tokens: 2, finish_reason: null },
      { text: 'c', tokens: 4, finish_reason: null },
      { text: '', tokens: 4, finish_reason: 'stop' },
    ]);
  });

  it('writes a late error as one JSON error line', async () => {
    const { app } = setup({ script: { pieces: ['a', 'b'], failAfter: { pieces: 1, error: new InferenceError(500, 'Backend died.') } } });
    const lines = await readNdjson(await generate(app, { prompt: 'Hi', stream: true }));
    expect(lines).toEqual([
      { text: 'a', tokens: 1, finish_reason: null },
      { error: { message: 'Backend died.', type: 'server_error', param: null, code: null } },
    ]);
  });

  it('cancelling the body stops the generation', async () => {
    const { app, runtime } = setup({ script: { pieces: Array.from({ length: 100 }, () => 'x'), delayMs: 5 } });
    const res = await generate(app, { prompt: 'Hi', stream: true });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await vi.waitFor(() => expect(runtime.cancelled).toBe(1), { timeout: 2000 });
  });

  it('cancelling the body before reading stops the generation', async () => {
    const { app, runtime } = setup({ script: { pieces: Array.from({ length: 100 }, () => 'x'), delayMs: 5 } });
    const res = await generate(app, { prompt: 'Hi', stream: true });
    await res.body!.cancel();
    await vi.waitFor(() => expect(runtime.cancelled).toBe(1), { timeout: 2000 });
  });
});

describe('POST /generate: errors', () => {
  it.each([
    ['prompt', {}],
    ['prompt', { prompt: 5 }],
    ['prompt', { prompt: [] }],
    ['prompt', { prompt: [{ role: 'tool', content: 'x' }] }],
    ['session_id', { prompt: 'Hi', session_id: 'abc' }],
    ['session_id', { prompt: 'Hi', session_id: 1.5 }],
    ['sequence_start', { prompt: 'Hi', sequence_start: 'yes' }],
    ['request_output_len', { prompt: 'Hi', request_output_len: -1 }],
    ['temperature', { prompt: 'Hi', temperature: 3 }],
    ['top_p', { prompt: 'Hi', top_p: 1.5 }],
    ['stop', { prompt: 'Hi', stop: 3 }],
  ])('400s a bad %s', async (param, body) => {
    const { app, runtime } = setup();
    await expect400(await generate(app, body), param);
    expect(runtime.requests).toHaveLength(0);
  });

  it('404s an unknown model', async () => {
    const { app } = setup();
    const res = await generate(app, { prompt: 'Hi', model: 'llama' });
    expect(res.status).toBe(404);
    expect((await res.json()).error).toMatchObject({ param: 'model', code: 'model_not_found', type: 'not_found_error' });
  });

  it('keeps a busy session 409 as an HTTP status, streamed or not', async () => {
    const { app } = setup({ script: { pieces: [], error: new InferenceError(409, 'Session 1 is busy.', { code: 'session_busy' }) } });
    for (const stream of [false, true]) {
      const res = await generate(app, { prompt: 'Hi', session_id: 1, stream });
      expect(res.status).toBe(409);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect((await res.json()).error).toEqual({ message: 'Session 1 is busy.', type: 'conflict_error', param: null, code: 'session_busy' });
    }
  });
});
