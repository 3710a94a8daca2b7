import { describe, expect, it } from 'vitest';
import { ggufModelConfig } from '../gguf/config.js';
import { readGguf } from '../gguf/reader.js';
import { writeGguf } from '../../test/helpers/gguf-writer.js';
import { decoderSpec, rotaryUnpermutation } from './gguf-decoder-graph.js';

const gemma3Meta = {
  'general.architecture': 'gemma3',
  'gemma3.vocab_size': 96,
  'gemma3.embedding_length': 640,
  'gemma3.block_count': 18,
  'gemma3.attention.head_count': 4,
  'gemma3.attention.head_count_kv': 1,
  'gemma3.feed_forward_length': 2048,
  'gemma3.context_length': 32768,
  'gemma3.attention.layer_norm_rms_epsilon': 1e-6,
  'gemma3.attention.key_length': 256,
  'gemma3.attention.value_length': 256,
  'gemma3.attention.sliding_window': 512,
  'gemma3.rope.freq_base': 1e6,
};

describe('decoderSpec', () => {
  it("reads a gemma3 GGUF's config (from src/gguf/config.ts): sliding layers, local rotary base, query scale", () => {
    const spec = decoderSpec(ggufModelConfig(readGguf(writeGguf(gemma3Meta, []))));
    expect(spec).toMatchObject({ architecture: 'gemma3', hidden: 640, layers: 18, heads: 4, kvHeads: 1, headDim: 256, ropeTheta: 1e6 });
    expect(spec.gemma).toMatchObject({ slidingWindow: 512, localRopeTheta: 10000, queryPreAttnScalar: 256 });
    // llama.cpp's pattern: every 6th layer is global.
    expect(spec.gemma!.sliding.map((s) => (s ? 's' : 'G')).join('')).toBe('sssssGsssssGsssssG');
  });

  it('refuses what it does not build, by name', () => {
    const llama = { model_type: 'llama', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 10 };
    expect(() => decoderSpec({ ...llama, model_type: 'phi3' })).toThrow(/GGUF architecture "phi3" is not supported \(supported: llama, mistral, qwen2, qwen3, gemma3\)/);
    expect(() => decoderSpec({ ...llama, partial_rotary_factor: 0.5 })).toThrow(/partial rotary/);
    expect(() => decoderSpec({ ...llama, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/rotary scaling "yarn"/);
    expect(() => decoderSpec({ ...llama, model_type: 'mistral', sliding_window: 4096, max_position_embeddings: 32768 })).toThrow(/sliding-window/);
    expect(() => decoderSpec({ ...llama, num_key_value_heads: 3 })).toThrow(/do not fit/);
    expect(decoderSpec(llama)).toMatchObject({ kvHeads: 4, headDim: 16, ropeTheta: 10000, rmsEps: 1e-5 });
  });
});

describe('rotaryUnpermutation', () => {
  it("maps HF's rotate-half rows back from llama.cpp's interleaved order, per head", () => {
    // head size 4: HF rows [a0 a1 b0 b1] are stored as [a0 b0 a1 b1].
    expect(Array.from(rotaryUnpermutation(2, 4))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });
});
