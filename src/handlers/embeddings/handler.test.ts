import { describe, expect, it } from 'vitest';
import { createApp, type App } from '../../app/create-app.js';
import { InferenceError } from '../../errors.js';
import type { EmbedRequest, EmbedResult } from '../../runtime/types.js';
import { MockRuntime, type MockRuntimeOptions } from '../../testing/mock-runtime.js';
import { type Json, expect400 } from '../../../test/helpers/handler-requests.js';

function setup(options: MockRuntimeOptions = {}): { app: App; runtime: MockRuntime } {
  const runtime = new MockRuntime(options);
  return { app: createApp({ runtime }), runtime };
}

/** A runtime whose embed() returns the given vectors, so the handler's maths can be checked on real numbers. */
function withVectors(vectors: number[][], model = 'vec-model'): { app: App; runtime: MockRuntime; calls: EmbedRequest[] } {
  const runtime = new MockRuntime();
  const calls: EmbedRequest[] = [];
  runtime.embed = async (request: EmbedRequest): Promise<EmbedResult> => {
    calls.push(request);
    return { model, embeddings: vectors.map((v) => Float32Array.from(v)), promptTokens: 5 };
  };
  return { app: createApp({ runtime }), runtime, calls };
}

function embed(app: App, body: unknown): Promise<Response> {
  return app.fetch(
    new Request('http://test/v1/embeddings', {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    }),
  );
}

function decodeBase64(b64: string): number[] {
  const bytes = Buffer.from(b64, 'base64');
  expect(bytes.length % 4).toBe(0);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('POST /v1/embeddings: seed requests', () => {
  it("answers Chinese-LLaMA-Alpaca's example (no model) with an OpenAI list", async () => {
    const { app, runtime } = setup({ embeddingModel: 'bge-small', embeddingSize: 4 });
    const res = await embed(app, { input: 'The weather is really nice today' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [1, 0, 0, 0] }],
      model: 'bge-small',
      usage: { prompt_tokens: 6, total_tokens: 6 },
    });
    expect(runtime.embedRequests).toHaveLength(1);
    expect(runtime.embedRequests[0].model).toBeUndefined();
    expect(runtime.embedRequests[0].input).toEqual(['The weather is really nice today']);
  });

  it("answers lmdeploy's example with model internlm-chat-7b (hidden-state embeddings)", async () => {
    const { app, runtime } = setup({ model: 'internlm-chat-7b' });
    const res = await embed(app, { model: 'internlm-chat-7b', input: 'Hello world!' });
    expect(res.status).toBe(200);
    const body: Json = await res.json();
    expect(body.object).toBe('list');
    expect(body.model).toBe('internlm-chat-7b');
    expect(body.data).toHaveLength(1);
    expect(body.data[0].object).toBe('embedding');
    expect(body.data[0].index).toBe(0);
    expect(body.data[0].embedding).toHaveLength(8);
    expect(body.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
    expect(runtime.embedRequests[0].model).toBe('internlm-chat-7b');
  });
});

describe('POST /v1/embeddings: inputs', () => {
  it('embeds a list of strings, one item per input in order', async () => {
    const { app, runtime } = setup({ embeddingModel: 'e', embeddingSize: 4 });
    const body: Json = await (await embed(app, { input: ['one', 'two words', 'three more words'] })).json();
    expect(runtime.embedRequests[0].input).toEqual(['one', 'two words', 'three more words']);
    expect(body.data.map((d: Json) => d.index)).toEqual([0, 1, 2]);
    expect(body.data.map((d: Json) => d.embedding)).toEqual([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
    ]);
    expect(body.usage).toEqual({ prompt_tokens: 6, total_tokens: 6 });
  });

  it('takes token ids, one list or several', async () => {
    const { app, runtime } = setup({ embeddingModel: 'e' });
    const one: Json = await (await embed(app, { input: [10, 11, 12] })).json();
    const two: Json = await (await embed(app, { input: [[1, 2], [3]] })).json();
    expect(runtime.embedRequests.map((r) => r.input)).toEqual([[[10, 11, 12]], [[1, 2], [3]]]);
    expect(one.data).toHaveLength(1);
    expect(one.usage.prompt_tokens).toBe(3);
    expect(two.data).toHaveLength(2);
    expect(two.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
  });

  it('passes the request signal to the runtime', async () => {
    const { app, runtime } = setup({ embeddingModel: 'e' });
    await embed(app, { input: 'x' });
    expect(runtime.embedRequests[0].signal).toBeInstanceOf(AbortSignal);
  });
});

describe('POST /v1/embeddings: encodings and dimensions', () => {
  const vector = [0.1, -0.25, 3.5, 0.001, -7];

  it('returns floats by default and for encoding_format float', async () => {
    const { app } = withVectors([vector]);
    for (const extra of [{}, { encoding_format: 'float' }, { encoding_format: null }]) {
      const body: Json = await (await embed(app, { input: 'x', ...extra })).json();
      expect(body.data[0].embedding).toEqual(vector.map(Math.fround));
      expect(body.model).toBe('vec-model');
      expect(body.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 });
    }
  });

  it('returns base64 little-endian float32 that decodes to the same numbers', async () => {
    const { app } = withVectors([vector, [1, 2, 3, 4, 5]]);
    const floats: Json = await (await embed(app, { input: ['x', 'y'] })).json();
    const base64: Json = await (await embed(app, { input: ['x', 'y'], encoding_format: 'base64' })).json();
    expect(typeof base64.data[0].embedding).toBe('string');
    expect(base64.data[0].embedding).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(decodeBase64(base64.data[0].embedding)).toEqual(floats.data[0].embedding);
    expect(decodeBase64(base64.data[1].embedding)).toEqual([1, 2, 3, 4, 5]);
    expect(base64.data.map((d: Json) => d.index)).toEqual([0, 1]);
    // Little-endian: 1.0f is 00 00 80 3f.
    const { app: unit } = withVectors([[1]]);
    const one: Json = await (await embed(unit, { input: 'x', encoding_format: 'base64' })).json();
    expect(Buffer.from(one.data[0].embedding, 'base64')).toEqual(Buffer.from([0x00, 0x00, 0x80, 0x3f]));
  });

  it('encodes long vectors to base64 without losing values', async () => {
    const long = Array.from({ length: 40_000 }, (_, i) => Math.sin(i));
    const { app } = withVectors([long]);
    const body: Json = await (await embed(app, { input: 'x', encoding_format: 'base64' })).json();
    expect(decodeBase64(body.data[0].embedding)).toEqual(long.map(Math.fround));
  });

  it('truncates to dimensions and renormalises to unit length', async () => {
    const { app } = withVectors([[0.5, 0.5, 0.5, 0.5], [3, 4, 12, 0]]);
    const body: Json = await (await embed(app, { input: ['a', 'b'], dimensions: 2 })).json();
    const [a, b] = body.data.map((d: Json) => d.embedding as number[]);
    expect(a).toHaveLength(2);
    expect(a[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(a[1]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(b[0]).toBeCloseTo(0.6, 6);
    expect(b[1]).toBeCloseTo(0.8, 6);
    expect(norm(a)).toBeCloseTo(1, 6);
    expect(norm(b)).toBeCloseTo(1, 6);
  });

  it('truncates and renormalises base64 output too', async () => {
    const { app } = withVectors([[3, 4, 12, 0]]);
    const body: Json = await (await embed(app, { input: 'a', dimensions: 2, encoding_format: 'base64' })).json();
    const v = decodeBase64(body.data[0].embedding);
    expect(v).toHaveLength(2);
    expect(v[0]).toBeCloseTo(0.6, 6);
    expect(v[1]).toBeCloseTo(0.8, 6);
  });

  it('leaves the vector unchanged when dimensions equals its size', async () => {
    const { app } = withVectors([[3, 4]]);
    const body: Json = await (await embed(app, { input: 'a', dimensions: 2 })).json();
    expect(body.data[0].embedding).toEqual([3, 4]);
  });

  it('400s dimensions larger than the vector', async () => {
    const { app } = setup({ embeddingModel: 'e', embeddingSize: 4 });
    const body = await expect400(await embed(app, { input: 'x', dimensions: 5 }), 'dimensions');
    expect(body.error.message).toContain('4');
  });
});

describe('POST /v1/embeddings: validation and errors', () => {
  it.each([
    ['input', {}],
    ['input', { input: [] }],
    ['input', { input: 5 }],
    ['input', { input: null }],
    ['input', { input: ['a', 1] }],
    ['encoding_format', { input: 'x', encoding_format: 'hex' }],
    ['dimensions', { input: 'x', dimensions: 0 }],
    ['dimensions', { input: 'x', dimensions: 1.5 }],
    ['model', { input: 'x', model: 3 }],
    ['user', { input: 'x', user: 3 }],
  ])('400s a bad %s', async (param, body) => {
    const { app, runtime } = setup({ embeddingModel: 'e' });
    await expect400(await embed(app, body), param);
    expect(runtime.embedRequests).toHaveLength(0);
  });

  it('400s more than 2048 inputs', async () => {
    const { app } = setup({ embeddingModel: 'e' });
    await expect400(await embed(app, { input: Array.from({ length: 2049 }, () => 'x') }), 'input');
  });

  it('404s an unknown model with model_not_found', async () => {
    const { app } = setup({ embeddingModel: 'e' });
    const res = await embed(app, { input: 'x', model: 'text-embedding-3-small' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: expect.stringContaining('text-embedding-3-small'), type: 'not_found_error', param: 'model', code: 'model_not_found' },
    });
  });

  it('keeps the status of a runtime error', async () => {
    const runtime = new MockRuntime();
    runtime.embed = async () => {
      throw new InferenceError(429, 'Busy.', { headers: { 'retry-after': '1' } });
    };
    const res = await embed(createApp({ runtime }), { input: 'x' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
  });
});
