import { describe, expect, it } from 'vitest';
import { readGguf } from '../gguf/reader.js';
import { dequantize } from '../gguf/quants.js';
import type { DecoderSpec, SourceTensor } from '../onnx/gguf-decoder-graph.js';
import { quantTensor, writeGguf } from '../../test/helpers/gguf-writer.js';
import { peftFiles, randomPairs } from '../../test/helpers/lora-fixtures.js';
import { ggufTensorOf, mergeGgufLora, peftToGguf, readGgufLora } from './gguf-merge.js';
import { readPeftAdapter } from './peft.js';

const spec: DecoderSpec = { architecture: 'llama', hidden: 8, layers: 1, heads: 2, kvHeads: 1, headDim: 4, vocab: 16, ropeTheta: 10000, rmsEps: 1e-5 };
const f32 = (name: string, dims: number[], fill = 0.5): SourceTensor => ({ name, type: 'F32', dims, data: new Uint8Array(new Float32Array(dims[0] * (dims[1] ?? 1)).fill(fill).buffer) });
const floats = (t: SourceTensor) => new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
const base = [f32('token_embd.weight', [8, 16]), f32('blk.0.attn_q.weight', [8, 8]), f32('blk.0.attn_v.weight', [8, 4]), f32('blk.0.ffn_down.weight', [12, 8])];
const adapter = (modules: [string, number, number][], seed = 1) => {
  const { config, safetensors } = peftFiles(randomPairs(modules, 2, seed), 2, 4);
  return peftToGguf(readPeftAdapter(config, safetensors), 'a');
};

describe('HF module -> GGUF tensor names', () => {
  it.each([
    ['model.layers.3.self_attn.q_proj', 'blk.3.attn_q.weight'],
    ['model.layers.0.self_attn.o_proj', 'blk.0.attn_output.weight'],
    ['layers.12.mlp.gate_proj', 'blk.12.ffn_gate.weight'],
    ['model.layers.1.mlp.down_proj', 'blk.1.ffn_down.weight'],
    ['lm_head', 'output.weight'],
    ['model.layers.0.self_attn.rotary_emb', undefined],
  ])('%s -> %s', (module, tensor) => expect(ggufTensorOf(module)).toBe(tensor));
});

describe('mergeGgufLora', () => {
  it('adds scale * B @ A to the rows in the GGUF order (Q rows permuted for llama, V rows not)', () => {
    const lora = adapter([['model.layers.0.self_attn.q_proj', 8, 8], ['model.layers.0.self_attn.v_proj', 4, 8]]);
    const { tensors } = mergeGgufLora(spec, base, lora, (t) => floats(t).slice());
    for (const [i, target, perm] of [[1, 0, [0, 2, 1, 3, 4, 6, 5, 7]], [2, 1, [0, 1, 2, 3]]] as const) {
      const { a, b, rank, scale, inFeatures } = lora.targets[target].pair;
      const merged = floats(tensors[i]);
      expect(tensors[i].type).toBe('F32');
      // HF row r lands on GGUF row perm[r] (llama.cpp: h*hd + 2i + j <- h*hd + j*hd/2 + i).
      perm.forEach((g, r) => {
        for (let c = 0; c < inFeatures; c++) {
          let d = 0;
          for (let k = 0; k < rank; k++) d += b[r * rank + k] * a[k * inFeatures + c];
          expect(merged[g * inFeatures + c]).toBeCloseTo(0.5 + scale * d, 5);
        }
      });
    }
    expect(floats(base[1])[0]).toBe(0.5); // the base tensors are not written to
    expect(tensors[3]).toBe(base[3]);
  });

  it('refuses what cannot be merged, by name', () => {
    expect(() => mergeGgufLora(spec, base, adapter([['lm_head', 16, 8]]), floats)).toThrow(/adapts lm_head, but the base model's head is tied to the token embedding/);
    expect(() => mergeGgufLora(spec, base, adapter([['model.layers.0.self_attn.k_proj', 4, 8]]), floats)).toThrow(/has no tensor blk\.0\.attn_k\.weight/);
    expect(() => mergeGgufLora(spec, base, adapter([['model.layers.0.self_attn.q_proj', 8, 4]]), floats)).toThrow(/q_proj is 8 x 4, the base tensor blk\.0\.attn_q\.weight is 8 x 8/);
    expect(() => adapter([['model.embed_tokens', 16, 8]])).toThrow(/adapts the token embedding, which cannot be merged/);
    expect(() => adapter([['model.layers.0.self_attn.rotary', 8, 8]])).toThrow(/module model\.layers\.0\.self_attn\.rotary is not one this server can merge/);
    const files = peftFiles(randomPairs([['model.layers.0.self_attn.q_proj', 8, 8]], 2, 1), 2, 4);
    const { pairs } = readPeftAdapter(files.config, files.safetensors);
    expect(() => peftToGguf({ pairs, otherTensors: ['base_model.model.lm_head.modules_to_save.default.weight'] }, 'm')).toThrow(/full weights \(base_model\.model\.lm_head\.modules_to_save\.default\.weight; PEFT's modules_to_save\)/);
  });
});

describe('readGgufLora', () => {
  const pair = (name: string) => [quantTensor(`${name}.lora_a`, 'F32', [8, 2], [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8]), quantTensor(`${name}.lora_b`, 'F32', [2, 4], [1, 0, 0, 1, 1, 1, 0, 0])];
  const meta = { 'general.architecture': 'llama', 'general.type': 'adapter', 'adapter.type': 'lora', 'adapter.lora.alpha': 6 };

  it('reads the pairs ([in, r] and [r, out] in ggml order) with scale alpha / r', () => {
    const lora = readGgufLora(readGguf(writeGguf(meta, pair('blk.0.attn_v.weight'))), 'x.gguf', dequantize);
    expect(lora.architecture).toBe('llama');
    expect(lora.targets).toHaveLength(1);
    expect(lora.targets[0]).toMatchObject({ tensor: 'blk.0.attn_v.weight', rowOrder: 'gguf', pair: { rank: 2, inFeatures: 8, outFeatures: 4, scale: 3 } });
  });

  it('refuses a model file, a missing half and an embedding LoRA', () => {
    expect(() => readGgufLora(readGguf(writeGguf({ 'general.architecture': 'llama' }, pair('blk.0.attn_v.weight'))), 'm.gguf', dequantize)).toThrow(/not marked general\.type = adapter/);
    expect(() => readGgufLora(readGguf(writeGguf(meta, pair('blk.0.attn_v.weight').slice(0, 1))), 'h.gguf', dequantize)).toThrow(/only one of lora_a and lora_b/);
    expect(() => readGgufLora(readGguf(writeGguf(meta, pair('token_embd.weight'))), 'e.gguf', dequantize)).toThrow(/token embedding/);
  });
});
