/**
 * The int8 matmul rewrite (src/onnx/onnx-int8-matmul.ts) through onnxruntime-node: on a Hub-style
 * dynamic q8 model (one activation scale per tensor) and on stories260K's weight-only q8, a
 * greedy request gives the same tokens alone, in a batch with neighbours, and with a cold or a
 * warm prefix cache. Without the rewrite, a dynamic q8 graph runs each sequence alone and reuses
 * no other request's prefix, so the same holds, slower.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCausalLM } from '../../src/adapters/node/ort-model.js';
import type { OrtCausalLM } from '../../src/onnx/ort-causal-lm.js';
import type { ForwardItem } from '../../src/runtime/backend.js';
import { createNodeRuntime, type NodeRuntime } from '../../src/adapters/node/runtime.js';
import type { GenerateRequest } from '../../src/runtime/types.js';
import { requireBuild } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/synthetic-llama-hd16', import.meta.url));
const stories = sharedModel(STORIES);

const request = (text: string, maxTokens: number) =>
  ({ input: { kind: 'text', text }, sampling: { temperature: 0 }, stop: [], ignoreEos: true, n: 1, maxTokens }) as GenerateRequest;

async function tokens(runtime: NodeRuntime, text: string, maxTokens: number): Promise<number[]> {
  const ids: number[] = [];
  for await (const e of runtime.generate(request(text, maxTokens))) if (e.type === 'delta') ids.push(...e.tokens);
  return ids;
}

const load = (dir: string, int8MatMul?: boolean) =>
  loadCausalLM({ path: `${dir}/onnx/model_quantized.onnx`, executionProviders: ['cpu'], threads: 1, contextLength: 2048, hiddenSize: 64, int8MatMul });

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/**
 * The last prompt position's logits three ways: the prompt prefilled whole; its last 10 tokens
 * after a cached prefix; its last token decoded alone and beside another sequence.
 */
async function groupings(lm: OrtCausalLM) {
  const prompt = Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 500));
  const logits = async (items: ForwardItem[]) => (await lm.forward(items))[0].slice();
  const whole = await logits([{ seq: 1, tokens: prompt }]);
  await lm.forward([{ seq: 2, tokens: prompt.slice(0, 38) }]);
  const warm = await logits([{ seq: 3, tokens: prompt.slice(30), source: { seq: 2, length: 30 } }]);
  // A whole prompt cached: the engine forwards its last two tokens (prefix-cache.ts, MIN_FORWARDED).
  const warm2 = await logits([{ seq: 7, tokens: prompt.slice(38), source: { seq: 2, length: 38 } }]);
  await lm.forward([{ seq: 4, tokens: prompt.slice(0, 39) }]);
  await lm.forward([{ seq: 5, tokens: prompt.slice(0, 39) }]);
  await lm.forward([{ seq: 6, tokens: [1, 2, 3] }]);
  const alone = await logits([{ seq: 4, tokens: prompt.slice(39) }]);
  const batched = await logits([{ seq: 5, tokens: prompt.slice(39) }, { seq: 6, tokens: [400] }]);
  for (const seq of [1, 2, 3, 4, 5, 6, 7]) lm.release(seq);
  return { warm: maxDiff(whole, warm), warm2: maxDiff(whole, warm2), decode: maxDiff(whole, alone), neighbour: maxDiff(alone, batched) };
}

describe('8-bit MatMulNBits instead of dynamic int8 (OrtCausalLM)', () => {
  it('rewrites every int8 matmul of the dynamic q8 fixture; a row no longer depends on how calls group tokens', async () => {
    const plain = await load(FIXTURE);
    const rewritten = await load(FIXTURE, true);
    try {
      expect(plain.matmul).toBe('');
      expect(plain.info.batchInvariant).toBe(false);
      expect(rewritten.matmul).toMatch(/^8-bit MatMulNBits \(15 dynamic int8 matmuls, activations quantized per row\); probe logits within \S+ of the int8 weights' in float, allowed \S+$/);
      expect(rewritten.info.batchInvariant).toBe(true);
      const after = await groupings(rewritten);
      expect(after.warm).toBeLessThan(1e-4);
      expect(after.warm2).toBeLessThan(1e-4);
      expect(after.decode).toBeLessThan(1e-4);
      expect(after.neighbour).toBeLessThan(1e-4);
      // The exported graph, batched anyway (what edgellm did before): its scales span the call.
      (plain as unknown as { batchInvariant: boolean }).batchInvariant = true;
      const before = await groupings(plain);
      expect(Math.min(before.warm, before.warm2, before.decode, before.neighbour)).toBeGreaterThan(1e-2);
    } finally {
      await plain.dispose();
      await rewritten.dispose();
    }
  });

  it('with exactBatches, runs each sequence of the rewritten graph alone: a left-padded row is exact too', async () => {
    const lm = await loadCausalLM({
      path: `${FIXTURE}/onnx/model_quantized.onnx`, executionProviders: ['cpu'], threads: 1, contextLength: 2048, hiddenSize: 64, int8MatMul: true, exactQuantized: true,
    });
    try {
      expect(lm.matmul).toMatch(/^8-bit MatMulNBits/);
      expect(lm.info.batchInvariant).toBe(false);
      // Sequence 2 is 6 tokens shorter than sequence 3: batched, it would be left-padded.
      await lm.forward([{ seq: 1, tokens: [1, 40, 41] }]);
      await lm.forward([{ seq: 2, tokens: [1, 40, 41] }]);
      await lm.forward([{ seq: 3, tokens: [1, 2, 3, 4, 5, 6, 7, 8, 9] }]);
      const alone = (await lm.forward([{ seq: 1, tokens: [50] }]))[0].slice();
      const [beside] = await lm.forward([{ seq: 2, tokens: [50] }, { seq: 3, tokens: [60] }]);
      expect(Array.from(beside)).toEqual(Array.from(alone));
      expect(lm.counters.decodeCalls).toBe(0);
    } finally {
      await lm.dispose();
    }
  });

  it('runs each sequence alone when the dynamic q8 graph stays as exported', async () => {
    const plain = await load(FIXTURE);
    try {
      const after = await groupings(plain);
      expect(after.neighbour).toBe(0);
      expect(plain.counters.decodeCalls).toBe(0); // no batched decode step
    } finally {
      await plain.dispose();
    }
  });

  it.skipIf(!stories)('leaves weight-only q8 (stories260K) to onnxruntime, whose own fusion is the same per-row kernel', async () => {
    const lm = await load(stories!, true);
    try {
      expect(lm.matmul).toBe('');
      expect(lm.info.batchInvariant).toBe(true);
      const after = await groupings(lm);
      expect(Math.max(after.warm, after.warm2, after.decode, after.neighbour)).toBeLessThan(1e-4);
    } finally {
      await lm.dispose();
    }
  });
});

describe.each([
  ['dynamic q8 (synthetic fixture), rewritten', () => FIXTURE, true, /^8-bit MatMulNBits/, ['Once upon a time', 'The cat sat', 'Lily and Tom went to the park to play', 'A']],
  ['dynamic q8 (synthetic fixture), not rewritten', () => FIXTURE, false, /^$/, ['Once upon a time', 'The cat sat', 'Lily and Tom went to the park to play', 'A']],
  ['weight-only q8 (stories260K)', () => stories, true, /^$/, ['Once upon a time', 'The dog', 'Tom had a big red ball and he', 'Lily']],
])('greedy output of %s', (_, dir, rewriteInt8, matmul, prompts) => {
  // `reference` reuses no cache and runs one request at a time; `runtime` has the prefix cache on.
  let reference: NodeRuntime;
  let runtime: NodeRuntime;
  beforeAll(async () => {
    requireBuild();
    if (!dir()) return;
    const open = (cacheMaxBytes?: number) =>
      createNodeRuntime({ model: dir()!, dtype: 'q8', device: 'cpu', threads: 1, rewriteInt8, cacheMaxBytes, log: () => {} });
    [reference, runtime] = [await open(0), await open()];
  });
  afterAll(async () => {
    await reference?.close();
    await runtime?.close();
  });

  it.skipIf(!dir())('is the same alone, with batch neighbours, and with a cold or warm prefix cache', async () => {
    expect(runtime.loadInfo.matmul).toMatch(matmul);
    const n = 24;
    // Each prompt, and a longer one that starts with it (a prefix-cache hit once the first ran).
    const all = prompts.flatMap((text) => [text, `${text} and then they`]);
    const expected: number[][] = [];
    for (const text of all) expected.push(await tokens(reference, text, n));
    // Cold, then warm: the same requests one at a time after the cache holds their prefixes.
    const first: number[][] = [];
    for (const text of all) first.push(await tokens(runtime, text, n));
    const again: number[][] = [];
    for (const text of all) again.push(await tokens(runtime, text, n));
    // All at once: batch neighbours, and prefix hits again.
    const together = await Promise.all(all.map((text) => tokens(runtime, text, n)));
    expect(first).toEqual(expected);
    expect(again).toEqual(expected);
    expect(together).toEqual(expected);
    expect(expected.every((ids) => ids.length === n)).toBe(true);
    if (runtime.loadInfo.matmul || dir() === stories) {
      const stats = await runtime.backendStats();
      expect(stats.decodeRows).toBeGreaterThan(stats.decodeCalls); // batched steps did happen
    }
  });
});
