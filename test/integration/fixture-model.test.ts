/**
 * The real server on a model the test writes itself (a counting Llama-shaped ONNX graph), so this
 * suite runs anywhere: exact texts and usage, stop strings over HTTP, sessions, API keys, and the
 * sentence-embedding model when the shared fixtures are present.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { until } from '../helpers/until.js';
import { MODEL2VEC, sharedModel } from '../helpers/shared-models.js';

const KEY = 'sk-test-1234';

describe('counting fixture through the real server', () => {
  let root: string;
  let server: CliServer;
  let client: OpenAI;
  const embedder = sharedModel(MODEL2VEC);
  const post = (path: string, body: unknown, key = KEY) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'edgellm-fixture-'));
    await writeTinyLlama(join(root, 'counting'));
    server = await startCli([join(root, 'counting'), '--api-keys', KEY, ...(embedder ? ['--embedding-model', embedder] : [])]);
    client = new OpenAI({ apiKey: KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('logs that the graph takes any number of tokens per step', async () => {
    await until(() => server.output().includes('steps:'));
    expect(server.output()).toMatch(/steps: any number of tokens per step/);
  });

  it('counts on from the prompt and stops at </s> with exact usage', async () => {
    const completion = await client.completions.create({ model: 'counting', prompt: 'sixteen seventeen', temperature: 0 });
    expect(completion.choices[0]).toMatchObject({ text: ' eighteen nineteen twenty', finish_reason: 'stop' });
    expect(completion.usage).toEqual({ prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
  });

  it('takes token-id prompts and echoes the prompt', async () => {
    const completion = await client.completions.create({ model: 'counting', prompt: [1, 3, 4], max_tokens: 2, echo: true, temperature: 0 });
    expect(completion.choices[0].text).toBe('one two three four');
  });

  it('cuts at a stop string that spans tokens, streamed and not', async () => {
    const body = { model: 'counting', prompt: 'one', temperature: 0, stop: ['four fi'] };
    const full = await client.completions.create(body);
    expect(full.choices[0]).toMatchObject({ text: ' two three ', finish_reason: 'stop' });
    let streamed = '';
    for await (const chunk of await client.completions.create({ ...body, stream: true })) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(' two three ');
  });

  it('returns n choices and several prompts', async () => {
    const completion = await client.completions.create({ model: 'counting', prompt: ['one', 'ten'], n: 2, max_tokens: 1, temperature: 0 });
    expect(completion.choices.map((c) => [c.index, c.text])).toEqual([[0, ' two'], [1, ' two'], [2, ' eleven'], [3, ' eleven']]);
  });

  it('chats with the model template', async () => {
    const chat = await client.chat.completions.create({ model: 'counting', messages: [{ role: 'user', content: 'nineteen' }], temperature: 0, max_tokens: 3 });
    // The template ends with "assistant:", which the counting model follows with "one"
    // (the word-level decoder puts a space between words, so the reply starts with one).
    expect(chat.choices[0].message.content).toBe(' one two three');
  });

  it('runs beam search', async () => {
    const completion = await client.completions.create({ model: 'counting', prompt: 'five', max_tokens: 3, num_beams: 3 } as never);
    expect(completion.choices[0].text).toBe(' six seven eight');
  });

  it('requires the API key, except on /health', async () => {
    expect((await post('/v1/completions', { prompt: 'one' }, 'wrong')).status).toBe(401);
    const noKey = await fetch(`${server.url}/v1/models`);
    expect(noKey.status).toBe(401);
    expect((await noKey.json()).error.type).toBe('authentication_error');
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    await expect(new OpenAI({ apiKey: 'nope', baseURL: `${server.url}/v1`, maxRetries: 0 }).models.list()).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
  });

  it('ends a full /generate session with finish_reason "length" until renew_session', async () => {
    // The fixture's context is 64 tokens: a few turns of a long prompt fill it.
    const prompt = 'one two three four five six seven eight nine ten';
    let last: any;
    for (let turn = 0; turn < 6; turn++) {
      last = await (await post('/generate', { prompt, session_id: 3, sequence_start: turn === 0, request_output_len: 4, temperature: 0 })).json();
      if (last.finish_reason === 'length' && last.tokens === 0) break;
    }
    expect(last).toMatchObject({ text: '', tokens: 0, finish_reason: 'length' });
    const renewed = await (await post('/generate', { prompt, session_id: 3, renew_session: true, request_output_len: 4, temperature: 0 })).json();
    // /generate renders the conversation with the chat template, which ends in "assistant:".
    expect(renewed).toMatchObject({ text: ' one two three four', tokens: 4, finish_reason: 'length' });
  });

  it('answers 409 for a second request on a busy session', async () => {
    const first = post('/generate', { prompt: 'one', session_id: 9, request_output_len: 40, ignore_eos: true, stream: true });
    const busy = await (async () => {
      await new Promise((r) => setTimeout(r, 20));
      return post('/generate', { prompt: 'two', session_id: 9, sequence_start: false });
    })();
    await (await first).text();
    // Either the first was still running (409) or it had finished already; both are correct.
    expect([200, 409]).toContain(busy.status);
    if (busy.status === 409) expect((await busy.json()).error.code).toBe('session_busy');
  });

  it.skipIf(!embedder)('serves the sentence-embedding model and the hidden-state embeddings', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['counting', MODEL2VEC]);
    const e = await client.embeddings.create({ model: MODEL2VEC, input: ['The cat sits on the mat', 'A cat is sitting on a mat', 'Stock markets fell sharply'] });
    const [a, b, c] = e.data.map((d) => d.embedding);
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i], 0);
    expect(a).toHaveLength(64);
    expect(dot(a, b)).toBeGreaterThan(dot(a, c));
    const hidden = await client.embeddings.create({ model: 'counting', input: 'one two' });
    expect(hidden.data[0].embedding).toHaveLength(32);
    // Token ids (LangChain's default) beyond the embedding model's vocabulary: a 400, not a 500.
    const beyond = await client.embeddings.create({ model: MODEL2VEC, input: [[101, 2023, 40000]] }).catch((e) => e);
    expect(beyond).toBeInstanceOf(OpenAI.BadRequestError);
    expect(beyond.param).toBe('input');
    expect((await client.embeddings.create({ model: MODEL2VEC, input: [[101, 2023, 102]] })).data[0].embedding).toHaveLength(64);
  });
});
