import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedModel } from '../../test/helpers/shared-models.js';
import { quantTensor, randomFloats, typed, writeGguf, type WriterTensor, type WriterValue } from '../../test/helpers/gguf-writer.js';
import { modelShape } from '../model/model-config.js';
import { float32Decimal, ggufModelConfig } from './config.js';
import { readGguf, readGgufHeader } from './reader.js';

/** A tiny model file of `arch`: the metadata a converter writes, one layer's tensors. */
function tinyModel(arch: string, meta: Record<string, WriterValue> = {}, tensors: string[] = []) {
  const t = (name: string, dims: number[]): WriterTensor => quantTensor(name, 'F32', dims, randomFloats(dims.reduce((a, b) => a * b, 1), 3));
  return readGguf(
    writeGguf(
      {
        'general.architecture': arch,
        [`${arch}.context_length`]: 2048,
        [`${arch}.embedding_length`]: 64,
        [`${arch}.block_count`]: 2,
        [`${arch}.feed_forward_length`]: 128,
        [`${arch}.attention.head_count`]: 4,
        [`${arch}.attention.head_count_kv`]: 2,
        [`${arch}.attention.layer_norm_rms_epsilon`]: typed('FLOAT32', 1e-6),
        [`${arch}.rope.freq_base`]: typed('FLOAT32', 1000000),
        'tokenizer.ggml.bos_token_id': 1,
        'tokenizer.ggml.eos_token_id': 2,
        ...meta,
      },
      [t('token_embd.weight', [64, 100]), ...tensors.map((name) => t(name, [16]))],
    ),
  );
}

describe('ggufModelConfig', () => {
  it('llama: the transformers config fields, tied embeddings without output.weight', () => {
    const config = ggufModelConfig(tinyModel('llama'));
    expect(config).toMatchObject({
      model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 100, hidden_size: 64, intermediate_size: 128,
      num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, max_position_embeddings: 2048,
      rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null, tie_word_embeddings: true, attention_bias: false,
      bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
    });
    expect(modelShape(config).attention).toEqual({ heads: 4, kvHeads: 2, headDim: 16, ropeTheta: 1000000, maxPositions: 2048 });
  });

  it('qwen2: attention bias from the tensors, untied output, eot as a second eos', () => {
    const file = tinyModel('qwen2', { 'tokenizer.ggml.eot_token_id': 7 }, ['blk.0.attn_q.bias', 'output.weight']);
    expect(ggufModelConfig(file)).toMatchObject({ model_type: 'qwen2', attention_bias: true, tie_word_embeddings: false, eos_token_id: [2, 7], use_sliding_window: false });
  });

  it('qwen3: head_dim from key_length, q/k norm presence', () => {
    const file = tinyModel('qwen3', { 'qwen3.attention.key_length': 32, 'qwen3.attention.value_length': 32 }, ['blk.0.attn_q_norm.weight', 'blk.0.attn_k_norm.weight']);
    expect(ggufModelConfig(file)).toMatchObject({ model_type: 'qwen3', head_dim: 32, qk_norm: true });
    expect(ggufModelConfig(tinyModel('qwen3'))).toMatchObject({ qk_norm: false });
  });

  it("gemma3: sliding window, llama.cpp's layer pattern, query_pre_attn_scalar, local rotary base", () => {
    const file = tinyModel(
      'gemma3',
      { 'gemma3.block_count': 7, 'gemma3.attention.sliding_window': 512, 'gemma3.attention.key_length': 32 },
      ['blk.0.attn_q_norm.weight', 'blk.0.attn_k_norm.weight'],
    );
    const config = ggufModelConfig(file);
    expect(config).toMatchObject({
      model_type: 'gemma3_text', hidden_act: 'gelu_pytorch_tanh', sliding_window: 512, sliding_window_pattern: 6,
      query_pre_attn_scalar: 32, rope_local_base_freq: 10000, head_dim: 32, qk_norm: true,
    });
    expect(config.layer_types).toEqual([...Array(5).fill('sliding_attention'), 'full_attention', 'sliding_attention']);
  });

  it('rope scaling from metadata; partial rotary; rope_freqs tensor noted', () => {
    const yarn = tinyModel('qwen2', {
      'qwen2.rope.scaling.type': 'yarn', 'qwen2.rope.scaling.factor': typed('FLOAT32', 4), 'qwen2.rope.scaling.original_context_length': 32768,
    });
    expect(ggufModelConfig(yarn).rope_scaling).toEqual({ rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 });
    expect(ggufModelConfig(tinyModel('llama', { 'llama.rope.scaling.type': 'linear', 'llama.rope.scaling.factor': typed('FLOAT32', 8) })).rope_scaling).toEqual({ rope_type: 'linear', factor: 8 });
    expect(ggufModelConfig(tinyModel('llama', { 'llama.rope.dimension_count': 8 })).partial_rotary_factor).toBe(0.5);
    expect(ggufModelConfig(tinyModel('llama', {}, ['rope_freqs.weight'])).rope_freqs_tensor).toBe('rope_freqs.weight');
  });

  it('refuses other architectures naming them and the supported ones', () => {
    expect(() => ggufModelConfig(tinyModel('phi3'))).toThrow("GGUF architecture 'phi3' is not supported (supported: llama, qwen2, qwen3, gemma3)");
    expect(() => ggufModelConfig({ metadata: {}, tensors: [] })).toThrow(/missing general\.architecture/);
    expect(() => ggufModelConfig(tinyModel('llama', { 'llama.embedding_length': typed('STRING', 'x') }))).toThrow(/llama\.embedding_length is not a number/);
  });

  it('float32Decimal gives the short decimal of a float32', () => {
    expect(float32Decimal(Math.fround(1e-5))).toBe(1e-5);
    expect(float32Decimal(Math.fround(0.1))).toBe(0.1);
    expect(float32Decimal(100000)).toBe(100000);
    expect(float32Decimal(0.1)).toBe(0.1);
  });

  const dir = sharedModel('SmolLM2-135M-Instruct');
  it.skipIf(!dir)("SmolLM2's GGUF gives its shipped config.json", () => {
    const bytes = new Uint8Array(readFileSync(`${dir}/SmolLM2-135M-Instruct.Q4_1.gguf`));
    const header = readGgufHeader(bytes);
    const file = { metadata: header.metadata, tensors: header.tensors.map((t) => ({ ...t, data: new Uint8Array(0), supported: true })) };
    const shipped = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'));
    const ours = ggufModelConfig(file);
    for (const key of Object.keys(shipped).filter((k) => k !== 'torch_dtype' && k !== 'eos_token_id')) expect(ours[key], key).toEqual(shipped[key]);
    // eos first, then <|endoftext|>, which llama.cpp also treats as end of generation.
    expect(ours.eos_token_id).toEqual([2, 0]);
  });
});
