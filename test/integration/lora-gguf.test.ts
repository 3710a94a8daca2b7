/**
 * LoRA merged into tiny GGUF decoders, through onnxruntime-node, against the plain-loop reference
 * forward pass of W + (alpha / r) * B @ A (the test's own float64 merge, with llama.cpp's Q/K row
 * permutation from its converter's formula): PEFT adapters on a permuted (llama) and an unpermuted
 * (qwen2) architecture, a llama.cpp GGUF LoRA, and a zero adapter that leaves the model as it was.
 */
import { describe, expect, it } from 'vitest';
import { readGguf, type GgufTensor } from '../../src/gguf/reader.js';
import { dequantize } from '../../src/gguf/quants.js';
import { mergeGgufLora, peftToGguf, readGgufLora } from '../../src/lora/gguf-merge.js';
import { readPeftAdapter } from '../../src/lora/peft.js';
import type { SourceTensor } from '../../src/onnx/gguf-decoder-graph.js';
import { prefillLogits } from '../helpers/gguf-graph-run.js';
import { referenceLogits, tinyGguf, type TinyModel } from '../helpers/gguf-reference.js';
import { quantTensor, writeGguf } from '../helpers/gguf-writer.js';
import { decoderModules, peftFiles, randomPairs, referenceMerge, type TestPair } from '../helpers/lora-fixtures.js';

const IDS = [3, 17, 42, 5, 88, 61, 9];
const RANK = 4;
const ALPHA = 8;

/** Logits of every position of IDS from the graph built over `tensors` (a prefill on an empty cache). */
const graphLogits = async (model: TinyModel, tensors: readonly SourceTensor[]) => (await prefillLogits(model, tensors, IDS))[0];

function compare(got: Float32Array, reference: Float64Array[]) {
  const flat = reference.flatMap((row) => [...row]);
  let max = 0;
  let scale = 0;
  flat.forEach((v, i) => {
    max = Math.max(max, Math.abs(got[i] - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return { max, scale };
}

const maxChange = (a: Float64Array[], b: Float64Array[]) => Math.max(...a.map((row, r) => Math.max(...row.map((v, i) => Math.abs(v - b[r][i])))));

describe.each([
  ['llama', 'Q8_0', false],
  ['qwen2', 'Q4_0', true],
] as const)('LoRA on a tiny %s GGUF (%s weights, tied head: %s)', (architecture, weights, tied) => {
  const model = tinyGguf(architecture, { weights }, { tied });
  const modules = decoderModules(model.spec, [0, 1], 256);
  if (!tied) modules.push(['lm_head', model.spec.vocab, model.spec.hidden]);
  const codec = model.codec.dequantize;
  const base = referenceLogits(model.spec, model.tensors, model.codec, IDS);

  it('a PEFT adapter merged in: logits equal the reference forward pass of W + (alpha/r) B @ A', async () => {
    const pairs = randomPairs(modules, RANK, 5);
    const { config, safetensors } = peftFiles(pairs, RANK, ALPHA);
    const merged = mergeGgufLora(model.spec, model.tensors, peftToGguf(readPeftAdapter(config, safetensors), 'test'), codec);
    expect(merged.lines[0]).toMatch(new RegExp(`merged in float32 into ${modules.length} tensors \\(rank 4, scale 2\\)`));
    const reference = referenceLogits(model.spec, referenceMerge(model.spec, model.tensors, codec, pairs, ALPHA / RANK), model.codec, IDS);
    expect(maxChange(reference, base)).toBeGreaterThan(0.5); // the adapter matters
    const { max, scale } = compare(await graphLogits(model, merged.tensors), reference);
    expect(scale).toBeGreaterThan(1);
    expect(max).toBeLessThan(2e-4 * scale + 1e-4);
  });

  it('a zero adapter (B = 0) leaves every tensor as it was: the same logits, bit for bit', async () => {
    const pairs = randomPairs(modules, RANK, 6, { zero: true });
    const { config, safetensors } = peftFiles(pairs, RANK, ALPHA);
    const merged = mergeGgufLora(model.spec, model.tensors, peftToGguf(readPeftAdapter(config, safetensors), 'zero'), codec);
    merged.tensors.forEach((t, i) => expect(t).toBe(model.tensors[i]));
    expect(merged.lines.join('\n')).toMatch(/merged in float32 into 0 tensors[\s\S]*zero updates left unmerged/);
    expect(await graphLogits(model, merged.tensors)).toEqual(await graphLogits(model, model.tensors));
  });
});

describe('a llama.cpp GGUF LoRA (convert_lora_to_gguf layout) on a tiny llama GGUF', () => {
  const model = tinyGguf('llama', { weights: 'Q4_1' }, { tied: true }) as unknown as TinyModel & { tensors: GgufTensor[] };
  const { headDim: hd } = model.spec;
  const pairs = randomPairs(decoderModules(model.spec, [0, 1], 256, ['q', 'k', 'v', 'down']), RANK, 9);
  const NAMES: Record<string, string> = { q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', down_proj: 'ffn_down' };

  /** The converter's output: lora_a as is ([in, r] in ggml order), lora_b with the Q/K rows permuted as the base's. */
  const ggufLoraFile = (list: TestPair[], alpha: number, architecture = 'llama') => {
    const tensors = list.flatMap((p) => {
      const [, layer, proj] = /layers\.(\d+)\.\w+\.(\w+)$/.exec(p.module)!;
      const name = `blk.${layer}.${NAMES[proj]}.weight`;
      let b = p.b;
      if (proj === 'q_proj' || proj === 'k_proj') {
        b = new Float32Array(p.b.length);
        for (let r = 0; r < p.outFeatures; r++) {
          const [h, j, i] = [Math.floor(r / hd), Math.floor((r % hd) / (hd / 2)), r % (hd / 2)];
          b.set(p.b.subarray(r * p.rank, (r + 1) * p.rank), (h * hd + 2 * i + j) * p.rank);
        }
      }
      return [quantTensor(`${name}.lora_a`, 'F32', [p.inFeatures, p.rank], p.a), quantTensor(`${name}.lora_b`, 'F16', [p.rank, p.outFeatures], b)];
    });
    return readGguf(writeGguf({ 'general.architecture': architecture, 'general.type': 'adapter', 'adapter.type': 'lora', 'adapter.lora.alpha': alpha }, tensors));
  };

  it('merged: logits equal the reference forward pass (B rows already in the GGUF order, F16 halves)', async () => {
    // B is stored as F16 here: the reference uses the same rounded values.
    const rounded = pairs.map((p) => ({ ...p, b: dequantize({ ...quantTensor('b', 'F16', [p.rank, p.outFeatures], p.b), supported: true } as GgufTensor) }));
    const lora = readGgufLora(ggufLoraFile(pairs, ALPHA), 'adapter.gguf', dequantize);
    expect(lora.targets.map((t) => [t.tensor, t.pair.scale])).toContainEqual(['blk.0.attn_q.weight', ALPHA / RANK]);
    const merged = mergeGgufLora(model.spec, model.tensors, lora, dequantize);
    const reference = referenceLogits(model.spec, referenceMerge(model.spec, model.tensors, model.codec.dequantize, rounded, ALPHA / RANK), model.codec, IDS);
    const { max, scale } = compare(await graphLogits(model, merged.tensors), reference);
    expect(max).toBeLessThan(2e-4 * scale + 1e-4);
  });

  it('refuses an adapter for another architecture', () => {
    const lora = readGgufLora(ggufLoraFile(pairs.slice(0, 1), ALPHA, 'qwen2'), 'qwen.gguf', dequantize);
    expect(() => mergeGgufLora(model.spec, model.tensors, lora, dequantize)).toThrow(/LoRA qwen.gguf is for architecture "qwen2", the base model is "llama"/);
  });
});
