import { describe, expect, it } from 'vitest';
import { createApp } from '../../app/create-app.js';
import { MockRuntime, type MockRuntimeOptions } from '../../testing/mock-runtime.js';

type Json = any;

function get(options: MockRuntimeOptions, path: string): Promise<Response> {
  return createApp({ runtime: new MockRuntime(options) }).fetch(new Request(`http://test${path}`));
}

const model = (id: string, contextLength = 2048) => ({
  id,
  object: 'model',
  created: 1_700_000_000,
  owned_by: 'edgellm',
  max_model_len: contextLength,
  parent: null,
});

describe('GET /v1/models', () => {
  it('lists the served model in OpenAI format', async () => {
    const res = await get({ contextLength: 4096 }, '/v1/models');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body: Json = await res.json();
    expect(body).toEqual({ object: 'list', data: [model('mock-model', 4096)] });
    for (const m of body.data) {
      expect(typeof m.id).toBe('string');
      expect(Number.isInteger(m.created)).toBe(true);
      expect(typeof m.owned_by).toBe('string');
    }
  });

  it('includes the embedding model when one is served', async () => {
    const body: Json = await (await get({ model: 'internlm-chat-7b', embeddingModel: 'bge-small-zh' }, '/v1/models')).json();
    expect(body.object).toBe('list');
    expect(body.data.map((m: Json) => m.id)).toEqual(['internlm-chat-7b', 'bge-small-zh']);
    expect(body.data[1]).toEqual(model('bge-small-zh'));
  });

  it("answers lmdeploy's `curl /v1/models` (no headers, a trailing slash too)", async () => {
    const app = createApp({ runtime: new MockRuntime({ model: 'internlm-chat-7b' }) });
    for (const path of ['/v1/models', '/v1/models/']) {
      const res = await app.fetch(new Request(`http://test${path}`));
      expect(res.status, path).toBe(200);
      expect((await res.json()).data[0].id).toBe('internlm-chat-7b');
    }
  });
});

describe('GET /v1/models with LoRA adapters', () => {
  it("lists an adapter with its base model's id as parent, as vLLM does", async () => {
    const runtime = new MockRuntime({ model: 'base' });
    const base = runtime.models()[0];
    runtime.models = () => [base, { ...base, id: 'sql-lora', parent: 'base' }];
    const body: Json = await (await createApp({ runtime }).fetch(new Request('http://test/v1/models'))).json();
    expect(body.data.map((m: Json) => [m.id, m.parent])).toEqual([['base', null], ['sql-lora', 'base']]);
  });
});

describe('GET /v1/models/{id}', () => {
  it('returns one model', async () => {
    const res = await get({ embeddingModel: 'embed' }, '/v1/models/mock-model');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(model('mock-model'));
    expect(await (await get({ embeddingModel: 'embed' }, '/v1/models/embed')).json()).toEqual(model('embed'));
  });

  it('handles ids with slashes, raw or percent-encoded', async () => {
    const options = { model: 'Qwen/Qwen2.5-0.5B-Instruct' };
    for (const path of ['/v1/models/Qwen/Qwen2.5-0.5B-Instruct', '/v1/models/Qwen%2FQwen2.5-0.5B-Instruct']) {
      const res = await get(options, path);
      expect(res.status, path).toBe(200);
      expect((await res.json()).id).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    }
  });

  it('404s an unknown id with model_not_found', async () => {
    const res = await get({}, '/v1/models/gpt-4');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: 'The model `gpt-4` does not exist.', type: 'not_found_error', param: 'model', code: 'model_not_found' },
    });
    // A prefix of a served id is no match.
    expect((await get({}, '/v1/models/mock')).status).toBe(404);
  });
});
