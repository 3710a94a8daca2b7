/**
 * The GroupQueryAttention rewrite through onnxruntime-node, on the committed head-size-16
 * synthetic Llama fixtures: the fused model returns the exported graph's logits through every
 * way OrtCausalLM runs it (prefill, continuation prefill on a cache, left-padded decode batches,
 * forks, prefix reuse, released rows, hidden states), a wrong rewrite is caught by the load-time
 * probe and the original is used instead, and the Node runtime reports which one runs.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCausalLM } from '../../src/adapters/node/ort-model.js';
import { createNodeRuntime } from '../../src/adapters/node/runtime.js';
import type { AttentionShape } from '../../src/onnx/onnx-attention-fusion.js';
import type { ForwardItem } from '../../src/runtime/backend.js';
import type { GenerateRequest } from '../../src/runtime/types.js';
import { requireBuild } from '../helpers/cli-server.js';
import { Pair } from '../helpers/ort-pair.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/synthetic-llama-hd16', import.meta.url));
const GROUPED = fileURLToPath(new URL('../fixtures/synthetic-llama-hd16-grouped', import.meta.url));
const SHAPE: AttentionShape = { heads: 4, kvHeads: 2, headDim: 16, ropeTheta: 10000, maxPositions: 2048 };

const load = (dir: string, file: string, attention?: AttentionShape) =>
  loadCausalLM({ path: `${dir}/onnx/${file}`, executionProviders: ['cpu'], threads: 1, contextLength: 2048, hiddenSize: 64, attention });

describe.each([
  ['expanded K/V heads, fp32', FIXTURE, 'model.onnx', 1e-4],
  ['expanded K/V heads, dynamic q8', FIXTURE, 'model_quantized.onnx', 1e-3],
  ['grouped query heads, fp32', GROUPED, 'model.onnx', 1e-4],
])('GroupQueryAttention rewrite (%s)', (_, dir, file, tolerance) => {
  // The exported graph (`pair.plain`) and the rewritten one (`pair.other`), within `tolerance`.
  let pair: Pair;
  beforeAll(async () => {
    pair = new Pair(await load(dir, file), await load(dir, file, SHAPE), tolerance);
  });
  afterAll(async () => {
    await pair?.dispose();
  });

  it('is used, after its probe matched the exported graph', () => {
    expect(pair.plain.attention).toBe('exported graph');
    expect(pair.other.attention).toMatch(/^GroupQueryAttention \(2 layers; probe logits within \S+ of the exported graph's, allowed \S+\)$/);
  });

  it('gives the exported graph\'s logits through prefills, left-padded batches, forks and prefix reuse', async () => {
    const run = (items: ForwardItem[]) => pair.forward(items);
    const next = new Map<number, number>();
    next.set(1, (await run([{ seq: 1, tokens: [1, 40, 41, 42, 43, 44, 45] }]))[0]);
    next.set(2, (await run([{ seq: 2, tokens: [1, 90, 91] }]))[0]);
    // A continuation prefill on a cache (chunked prefill, /generate turns).
    next.set(2, (await run([{ seq: 2, tokens: [next.get(2)!, 92, 93] }]))[0]);
    next.set(3, (await run([{ seq: 3, tokens: [1] }]))[0]);
    const step = async () => {
      const seqs = [...next.keys()];
      const tokens = await run(seqs.map((seq) => ({ seq, tokens: [next.get(seq)!] })));
      seqs.forEach((seq, k) => next.set(seq, tokens[k]));
    };
    // Three rows of lengths 7, 6 and 1: left padding of 1 and 6 positions.
    for (let i = 0; i < 5; i++) await step();
    // n > 1 and beams fork a row out of the batch.
    await pair.fork(1, 4);
    next.set(4, next.get(1)!);
    for (let i = 0; i < 3; i++) await step();
    // A row leaves; the others go on in a rebuilt batch.
    pair.release(2);
    next.delete(2);
    for (let i = 0; i < 3; i++) await step();
    // Prefix reuse: a new sequence starts from the first 5 tokens of sequence 1's cache.
    next.set(5, (await run([{ seq: 5, tokens: [77, 78], source: { seq: 1, length: 5 } }]))[0]);
    for (let i = 0; i < 3; i++) await step();
  });

  it('keeps the hidden-state output for embeddings', async () => {
    expect((await pair.hidden([1, 5, 6, 7])).length).toBe(64);
  });
});

describe('the load-time probe', () => {
  it('rejects a rewrite whose logits differ, and loads the exported graph instead', async () => {
    // A rotary base the model was not trained with: the graph matches, the numbers do not.
    const wrong = await load(FIXTURE, 'model.onnx', { ...SHAPE, ropeTheta: 500 });
    const plain = await load(FIXTURE, 'model.onnx');
    try {
      expect(wrong.attention).toMatch(/^exported graph \(the GroupQueryAttention rewrite was rejected: its logits differ by up to \S+ \(allowed \S+\), \S+ on average \(allowed \S+\)\)$/);
      const items = [{ seq: 1, tokens: [1, 2, 3, 4] }];
      expect(Array.from((await wrong.forward(items))[0])).toEqual(Array.from((await plain.forward(items))[0]));
    } finally {
      await wrong.dispose();
      await plain.dispose();
    }
  });

  it('says why a model does not qualify', async () => {
    const lm = await load(FIXTURE, 'model.onnx', { ...SHAPE, headDim: 8 });
    expect(lm.attention).toBe('exported graph (head size 8 is not a multiple of 16)');
    await lm.dispose();
  });
});

describe('GroupQueryAttention in the Node runtime', () => {
  beforeAll(() => requireBuild());

  it('is on by default on the CPU, off with fuseAttention: false, and batched greedy requests match alone', async () => {
    const request = (text: string) =>
      ({ input: { kind: 'text', text }, sampling: { temperature: 0 }, stop: [], ignoreEos: true, n: 1, maxTokens: 12 }) as GenerateRequest;
    const prompts = ['Once upon a time', 'The cat', 'Lily and Tom went to the park', 'A'];
    const outputs: number[][][] = [];
    for (const fuseAttention of [undefined, false]) {
      const runtime = await createNodeRuntime({ model: FIXTURE, dtype: 'fp32', device: 'cpu', cacheMaxBytes: 0, fuseAttention, log: () => {} });
      try {
        expect(runtime.loadInfo.attention).toMatch(fuseAttention === false ? /^exported graph \(EDGELLM_FUSE_ATTENTION=0\)$/ : /^GroupQueryAttention /);
        const tokens = async (text: string) => {
          const ids: number[] = [];
          for await (const e of runtime.generate(request(text))) if (e.type === 'delta') ids.push(...e.tokens);
          return ids;
        };
        const alone: number[][] = [];
        for (const text of prompts) alone.push(await tokens(text));
        const together = await Promise.all(prompts.map(tokens));
        expect(together).toEqual(alone);
        outputs.push(alone);
      } finally {
        await runtime.close();
      }
    }
    // fp32: the fused and the exported graph agree on every greedy token.
    expect(outputs[0]).toEqual(outputs[1]);
    expect(outputs[0].every((ids) => ids.length === 12)).toBe(true);
  });
});
