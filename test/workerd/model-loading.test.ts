/**
 * Model loading inside workerd: external-data files and float16 tensors, model files from R2 and
 * KV bindings, and the start-up refusals (a model over the memory budget, missing configuration)
 * that answer every request with a 503 saying what is wrong.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { afterEach, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../src/adapters/node/tokenizer.js';
import { workerMiniflareOptions } from '../../tools/workerd-dev/server.js';
import { requireBuild } from '../helpers/cli-server.js';
import { readGgufHeader, GgufTruncatedError } from '../../src/gguf/reader.js';
import { MODEL2VEC, SHARED_MODELS, sharedModel, SMOLLM2, STORIES, TINY_RANDOM } from '../helpers/shared-models.js';
import { startWorkerd } from '../helpers/workerd.js';

const stories = sharedModel(STORIES);
const tiny = sharedModel(TINY_RANDOM);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// karpathy's temperature-0 sample (llama2.c doc/stories260K.md), as in the endpoint suite.
const GOLDEN = ', there was a little girl named Lily. She loved to play outside in the park.';
// Greedy ids for "Hello, my name is" on the tiny random Llama, pinned on onnxruntime-node (test/integration/node-runtime.test.ts).
const TINY_GOLDEN_IDS = [4598, 25148, 18190, 28667, 18975, 29267, 6471, 29077, 8575, 15605, 10668, 21336];

let disposers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(disposers.map((d) => d()));
  disposers = [];
});

async function worker(vars: Record<string, string>) {
  const server = await startWorkerd(vars);
  disposers.push(server.dispose);
  return server.url;
}

/** A Miniflare whose MODELS binding (R2 or KV) holds the given model directories, and no assets. */
async function workerWithBinding(kind: 'r2' | 'kv', models: string[], vars: Record<string, string>) {
  requireBuild();
  const { assets: _assets, ...options } = workerMiniflareOptions({ root: ROOT, vars });
  type Store = { put(key: string, value: Uint8Array): Promise<unknown> };
  const mf = new Miniflare({ ...options, ...(kind === 'r2' ? { r2Buckets: ['MODELS'] } : { kvNamespaces: ['MODELS'] }) });
  disposers.push(() => mf.dispose());
  const url = (await mf.ready).href.replace(/\/$/, '');
  const store = (kind === "r2" ? await mf.getR2Bucket("MODELS") : await mf.getKVNamespace("MODELS")) as unknown as Store;
  for (const model of models) {
    const dir = join(SHARED_MODELS, model);
    const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
    for (const file of walk(dir)) await store.put(`${model}/${relative(dir, file)}`, readFileSync(file));
  }
  return url;
}

const complete = (url: string, body: object) =>
  fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe.skipIf(!tiny)('model files in workerd', () => {
  it('loads the fp16 tiny Llama whose weights live in model.onnx.data, with the pinned greedy tokens', async () => {
    const url = await worker({ MODEL: TINY_RANDOM, DTYPE: 'fp16', EMBEDDING_MODEL: '' });
    const response = await complete(url, { prompt: 'Hello, my name is', temperature: 0, max_tokens: TINY_GOLDEN_IDS.length });
    expect(response.status).toBe(200);
    const body = await response.json();
    const tokenizer = await loadTokenizer(tiny!, []);
    expect(body.choices[0].text).toBe(tokenizer.decode(TINY_GOLDEN_IDS));
    expect(body.usage).toEqual({ prompt_tokens: 6, completion_tokens: 12, total_tokens: 18, prompt_tokens_details: { cached_tokens: 0 } });
  });
});

describe.skipIf(!stories)('model bindings in workerd', () => {
  for (const kind of ['r2', 'kv'] as const) {
    it(`reads the model and the embedding model from a${kind === 'r2' ? 'n R2 bucket' : ' KV namespace'} bound as MODELS`, async () => {
      const url = await workerWithBinding(kind, [STORIES, MODEL2VEC], { MODEL: STORIES, EMBEDDING_MODEL: MODEL2VEC });
      const body = await (await complete(url, { prompt: 'Once upon a time', temperature: 0, max_tokens: 20 })).json();
      expect(GOLDEN.startsWith(body.choices[0].text)).toBe(true);
      const embedding = await (await fetch(`${url}/v1/embeddings`, { method: 'POST', body: JSON.stringify({ input: 'hello' }) })).json();
      expect(embedding.data[0].embedding).toHaveLength(64);
    });
  }
});

describe.skipIf(!stories)('start-up refusals in workerd', () => {
  const expect503 = async (url: string, message: RegExp, code: string) => {
    for (const [method, path] of [['GET', '/health'], ['GET', '/v1/models'], ['POST', '/v1/chat/completions']]) {
      const response = await fetch(`${url}${path}`, { method, body: method === 'POST' ? '{"messages":[{"role":"user","content":"hi"}]}' : undefined });
      expect(response.status, path).toBe(503);
      const body = await response.json();
      expect(body.error).toMatchObject({ type: 'service_unavailable', code });
      expect(body.error.message).toMatch(message);
    }
  };

  it('refuses a model whose estimated memory exceeds MAX_MODEL_BYTES, naming the file, its size, the estimate and the budget', async () => {
    // The file (1.1 MB) fits in 9.5 MB; what onnxruntime-web's wasm memory makes of it (measured growth) does not.
    const url = await worker({ MODEL: STORIES, MAX_MODEL_BYTES: String(10_000_000) });
    await expect503(
      url,
      /karpathy__stories260K\/onnx\/model\.onnx is 1\.1 MB: loading it needs about 22\.1 MB of memory \(5\.3 x its size: .*\), more than the memory budget of 9\.5 MB\. .*128 MB/,
      'model_too_large',
    );
  });

  it('counts the embedding model against the same budget', async () => {
    const url = await worker({ MODEL: STORIES, EMBEDDING_MODEL: MODEL2VEC, MAX_MODEL_BYTES: String(24_000_000) });
    await expect503(url, /MinishLab__model2vec-test-model-vocab-quantized\/onnx\/model\.onnx is 378\.5 KB, after 1\.1 MB of other model files: loading it needs about 24\.\d MB/, 'model_too_large');
  });

  it('says which variable is wrong or which file is missing', async () => {
    await expect503(await worker({ MODEL: '' }), /MODEL is not set/, 'model_load_failed');
    await expect503(await worker({ MODEL: STORIES, INSTANCE_NUM: 'many' }), /INSTANCE_NUM must be an integer >= 1/, 'model_load_failed');
    await expect503(await worker({ MODEL: 'no-such-model' }), /config\.json of model no-such-model .*HTTP 404/, 'model_load_failed');
  });
});

const smol = sharedModel(SMOLLM2);
describe.skipIf(!smol)('a GGUF over the budget in workerd', () => {
  it('refuses the real SmolLM2 GGUF from its header alone, with the budget and the estimate', async () => {
    // Only the header goes into R2: a Worker that read on for the tensor data would fail otherwise.
    const path = join(SHARED_MODELS, SMOLLM2, 'SmolLM2-135M-Instruct.Q4_1.gguf');
    const fd = openSync(path, 'r');
    let header: Uint8Array | undefined;
    try {
      for (let size = 1 << 20; !header; size *= 2) {
        const bytes = new Uint8Array(size);
        const read = readSync(fd, bytes, 0, size, 0);
        try {
          header = bytes.subarray(0, readGgufHeader(bytes.subarray(0, read)).dataOffset);
        } catch (error) {
          if (!(error instanceof GgufTruncatedError)) throw error;
        }
      }
    } finally {
      closeSync(fd);
    }
    requireBuild();
    const { assets: _assets, ...options } = workerMiniflareOptions({ root: ROOT, vars: { MODEL: 'SmolLM2-135M-Instruct.Q4_1.gguf', EMBEDDING_MODEL: '' }, onSkippedAssets: () => {} });
    const mf = new Miniflare({ ...options, r2Buckets: ['MODELS'] });
    disposers.push(() => mf.dispose());
    const url = (await mf.ready).href.replace(/\/$/, '');
    await ((await mf.getR2Bucket('MODELS')) as unknown as { put(key: string, value: Uint8Array): Promise<unknown> }).put('SmolLM2-135M-Instruct.Q4_1.gguf', header);
    const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: '{"messages":[{"role":"user","content":"hi"}]}' });
    expect(response.status).toBe(503);
    const { error } = await response.json();
    expect(error.code).toBe('model_too_large');
    expect(error.message).toMatch(
      /^SmolLM2-135M-Instruct\.Q4_1\.gguf is 93\.8 MB: loading it needs about 514\.3 MB of memory \(the file, the ONNX graph converted from it \(about 106\.4 MB\), onnxruntime-web's wasm growth of 2\.8 x that graph, and 16\.0 MB the wasm memory starts with\), more than the memory budget of 128\.0 MB\./,
    );
    expect(statSync(path).size).toBeGreaterThan(90 * 1024 * 1024);
  });
});
