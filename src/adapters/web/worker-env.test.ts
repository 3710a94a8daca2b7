import { describe, expect, it } from 'vitest';
import { webAppOptionsFromEnv } from './worker-env.js';

const assets = { fetch: async () => new Response('') };
const r2 = { head: async () => null, get: async () => null };

describe('webAppOptionsFromEnv', () => {
  it('maps every variable to its option, with the models binding', () => {
    const options = webAppOptionsFromEnv({
      MODEL: 'stories', MODEL_NAMES: 'a, b', EMBEDDING_MODEL: 'emb', DTYPE: 'q8', DEVICE: 'wasm', MAX_MODEL_BYTES: '1000',
      MODELS: r2, ASSETS: assets, API_KEYS: 'k1,k2', CORS: '*', BASE_PATH: '/llm', INSTANCE_NUM: '4', MAX_QUEUE: '0',
      CACHE_MAX_BYTES: '0', PREFILL_CHUNK: '64', SESSION_LEN: '256', MAX_BODY_BYTES: '2048', CHAT_TEMPLATE: 'chatml', PROMPT_TEMPLATE: 'alpaca',
      LORA_MODULES: 'sql=adapters/sql, poem=adapters/poem.gguf',
    });
    expect(options).toEqual({
      model: 'stories', modelNames: ['a', 'b'], embeddingModel: 'emb', dtype: 'q8', device: 'wasm', maxModelBytes: 1000, binding: r2,
      apiKeys: ['k1', 'k2'], cors: '*', basePath: '/llm', maxConcurrent: 4, maxQueue: 0, cacheMaxBytes: 0, prefillChunk: 64,
      sessionLength: 256, maxBodyBytes: 2048, chatTemplate: 'chatml', completionTemplate: 'alpaca',
      loraModules: [{ name: 'sql', path: 'adapters/sql' }, { name: 'poem', path: 'adapters/poem.gguf' }],
    });
  });

  it('falls back to the assets binding, then to MODEL_BASE_URL, and leaves unset options undefined', () => {
    expect(webAppOptionsFromEnv({ MODEL: 'm', ASSETS: assets })).toEqual({ model: 'm', binding: assets });
    const byUrl = webAppOptionsFromEnv({ MODEL: 'm', MODEL_BASE_URL: 'https://cdn/models/', CORS: 'https://a, https://b', EMBEDDING_MODEL: '' });
    expect(byUrl).toEqual({ model: 'm', baseUrl: 'https://cdn/models/', cors: ['https://a', 'https://b'] });
    expect(byUrl).not.toHaveProperty('binding');
    expect(webAppOptionsFromEnv({ MODEL: 'https://cdn/models/m' }).model).toBe('https://cdn/models/m');
  });

  it.each([
    [{}, /MODEL is not set/],
    [{ MODEL: 'm' }, /No model files: bind them as MODELS/],
    [{ MODEL: 'm', MODELS: {} as never }, /MODELS is not an R2 bucket/],
    [{ MODEL: 'm', ASSETS: assets, DTYPE: 'int4' }, /DTYPE must be one of fp32, fp16, q8, q4, not "int4"/],
    [{ MODEL: 'm', ASSETS: assets, DEVICE: 'cuda' }, /DEVICE must be one of auto, webgpu, wasm/],
    [{ MODEL: 'm', ASSETS: assets, INSTANCE_NUM: '0' }, /INSTANCE_NUM must be an integer >= 1, not "0"/],
    [{ MODEL: 'm', ASSETS: assets, MAX_MODEL_BYTES: '12.5' }, /MAX_MODEL_BYTES must be an integer/],
    [{ MODEL: 'm', ASSETS: assets, CHAT_TEMPLATE: 'vicuna' }, /CHAT_TEMPLATE must be one of model, alpaca/],
    [{ MODEL: 'm', ASSETS: assets, INSTANCE_NUM: ' ' }, /INSTANCE_NUM must be an integer >= 1, not " "/],
    [{ MODEL: 'm', ASSETS: assets, API_KEYS: r2 }, /API_KEYS must be a string variable/],
    [{ MODEL: 'm', ASSETS: assets, LORA_MODULES: 'sql' }, /LORA_MODULES sql: expected NAME=PATH/],
  ])('refuses %j', (env, message) => {
    expect(() => webAppOptionsFromEnv(env)).toThrow(message);
  });
});
