/**
 * Run-time LoRA in the GGUF decoder graph (`--lora-modules`), through onnxruntime-node: one graph
 * holds the base and several adapters, and each batch row picks its adapter with `lora_index`.
 * Each row's logits must equal the graph built with that adapter merged (`--lora-model`'s path)
 * up to float32 rounding, the base row must equal the graph without adapters bit for bit, and a
 * row's logits must not depend on which adapters its neighbours use.
 */
import { describe, expect, it } from 'vitest';
import { mergeGgufLora, peftToGguf, type GgufLora } from '../../src/lora/gguf-merge.js';
import { stackLoras } from '../../src/lora/lora-stack.js';
import { readPeftAdapter } from '../../src/lora/peft.js';
import type { DecoderBuildOptions, SourceTensor } from '../../src/onnx/gguf-decoder-graph.js';
import { prefillLogits } from '../helpers/gguf-graph-run.js';
import { tinyGguf, type TinyModel } from '../helpers/gguf-reference.js';
import { decoderModules, peftFiles, randomPairs, type TestPair } from '../helpers/lora-fixtures.js';

const IDS = [3, 17, 42, 5, 88, 61, 9];

/** Logits [rows, IDS.length, vocab] of IDS prefilled on an empty cache, one row per adapter index. */
const graphLogits = (model: TinyModel, tensors: readonly SourceTensor[], options: DecoderBuildOptions, adapters?: number[]) =>
  prefillLogits(model, tensors, IDS, options, adapters);

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const peft = (pairs: TestPair[], rank: number, alpha: number, name: string): GgufLora => {
  const { config, safetensors } = peftFiles(pairs, rank, alpha);
  return peftToGguf(readPeftAdapter(config, safetensors), name);
};

/** The same pairs as llama.cpp's converter writes them: B's Q/K rows in the GGUF (permuted) order. */
function asGgufLora(lora: GgufLora, hd: number): GgufLora {
  return {
    name: `${lora.name}.gguf`,
    targets: lora.targets.map(({ tensor, pair }) => {
      if (!/attn_[qk]\.weight$/.test(tensor)) return { tensor, pair, rowOrder: 'gguf' };
      const b = new Float32Array(pair.b.length);
      for (let r = 0; r < pair.outFeatures; r++) {
        const [h, j, i] = [Math.floor(r / hd), Math.floor((r % hd) / (hd / 2)), r % (hd / 2)];
        b.set(pair.b.subarray(r * pair.rank, (r + 1) * pair.rank), (h * hd + 2 * i + j) * pair.rank);
      }
      return { tensor, pair: { ...pair, b }, rowOrder: 'gguf' };
    }),
  };
}

describe.each([
  ['llama', 'Q8_0', false],
  ['qwen2', 'Q4_0', true],
] as const)('run-time LoRA on a tiny %s GGUF (%s weights, tied head: %s)', (architecture, weights, tied) => {
  const model = tinyGguf(architecture, { weights }, { tied });
  const all = decoderModules(model.spec, [0, 1], 256);
  if (!tied) all.push(['lm_head', model.spec.vocab, model.spec.hidden]);
  // Two adapters of different ranks, scales and targets; the second one also as a GGUF LoRA (llama).
  const first = peft(randomPairs(all, 4, 5), 4, 8, 'first');
  const second = peft(randomPairs(decoderModules(model.spec, [1], 256, ['q', 'k', 'down']), 2, 7), 2, 2, 'second');
  const adapters = architecture === 'llama' ? [first, second, asGgufLora(second, model.spec.headDim)] : [first, second];
  const stack = stackLoras(model.spec, model.tensors, adapters);

  it.each(['mask', 'gather'] as const)('%s: each row equals its adapter merged; the base row equals the graph without adapters bit for bit', async (loraForm) => {
    const indices = adapters.map((_, i) => i + 1);
    const rows = await graphLogits(model, model.tensors, { lora: stack, loraForm }, [0, ...indices]);
    const [base] = await graphLogits(model, model.tensors, {});
    expect(rows[0]).toEqual(base);
    for (const [i, lora] of adapters.entries()) {
      const [merged] = await graphLogits(model, mergeGgufLora(model.spec, model.tensors, lora, model.codec.dequantize).tensors, {});
      expect(maxDiff(merged, base)).toBeGreaterThan(0.05); // the adapter matters
      expect(maxDiff(rows[i + 1], merged)).toBeLessThan(1e-4 * maxAbs(merged) + 1e-5);
    }
  });

  it.each(['mask', 'gather'] as const)("%s: a row's logits do not depend on its neighbours' adapters", async (loraForm) => {
    const mixed = await graphLogits(model, model.tensors, { lora: stack, loraForm }, [2, 0, 1, 2]);
    const alone = await Promise.all([0, 1, 2].map(async (i) => (await graphLogits(model, model.tensors, { lora: stack, loraForm }, [i]))[0]));
    expect(mixed[1]).toEqual(alone[0]);
    expect(mixed[2]).toEqual(alone[1]);
    expect(mixed[0]).toEqual(alone[2]);
    expect(mixed[3]).toEqual(alone[2]);
  });
});

describe('stacking refusals', () => {
  const model = tinyGguf('llama', { weights: 'Q8_0' }, { tied: true });
  it('refuses an lm_head adapter on a tied head, a shape mismatch and another architecture, naming the adapter', () => {
    const head = peft(randomPairs([['lm_head', model.spec.vocab, model.spec.hidden]], 2, 1), 2, 2, 'head');
    expect(() => stackLoras(model.spec, model.tensors, [head])).toThrow(/LoRA head: it adapts lm_head, but the base model's head is tied/);
    const wrong = peft(randomPairs([['model.layers.0.self_attn.q_proj', 128, model.spec.hidden]], 2, 1), 2, 2, 'wrong');
    expect(() => stackLoras(model.spec, model.tensors, [wrong])).toThrow(/LoRA wrong: model.layers.0.self_attn.q_proj is 128 x 256, the base tensor blk.0.attn_q.weight is 256 x 256/);
    const other = { ...peft(randomPairs(decoderModules(model.spec, [0], 256, ['q']), 2, 1), 2, 2, 'qwen'), architecture: 'qwen2' };
    expect(() => stackLoras(model.spec, model.tensors, [other])).toThrow(/LoRA qwen is for architecture "qwen2"/);
  });
});
