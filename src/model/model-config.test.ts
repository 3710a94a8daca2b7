import { describe, expect, it } from 'vitest';
import { attentionShape, configDtype, generationDefaults, isDtype, modelShape, onnxFileName } from './model-config.js';

describe('model config', () => {
  it('names ONNX files as transformers.js does', () => {
    expect(['fp32', 'fp16', 'q8', 'q4'].map((d) => onnxFileName(d as never))).toEqual(['model.onnx', 'model_fp16.onnx', 'model_quantized.onnx', 'model_q4.onnx']);
    expect(onnxFileName('q4', 'decoder_model_merged')).toBe('decoder_model_merged_q4.onnx');
    expect(isDtype('q8')).toBe(true);
    expect(isDtype('int8')).toBe(false);
  });

  it("takes config.json's transformers.js dtype only when it is a single known one", () => {
    expect(configDtype({ 'transformers.js_config': { dtype: 'q4' } })).toBe('q4');
    expect(configDtype({ 'transformers.js_config': { dtype: { decoder: 'q4' } } })).toBeUndefined();
    expect(configDtype({})).toBeUndefined();
  });

  it('reads the context, hidden size and EOS ids (generation config first)', () => {
    expect(modelShape({ max_position_embeddings: 512, hidden_size: 64, eos_token_id: 2 }, { eos_token_id: [2, 1] })).toEqual({
      contextLength: 512, hiddenSize: 64, eosTokenIds: [2, 1, 2], attention: 'model_type (none) is not one of llama, mistral, qwen2, qwen3',
    });
    expect(modelShape({ n_positions: 1024 })).toMatchObject({ contextLength: 1024, hiddenSize: 0, eosTokenIds: [] });
    expect(modelShape({}).contextLength).toBe(2048);
  });

  it('makes do_sample: false greedy and keeps numeric sampling fields', () => {
    expect(generationDefaults({ do_sample: false, temperature: 0.7, top_k: 5, repetition_penalty: 1.1 })).toEqual({
      temperature: 0, topK: undefined, topP: undefined, repetitionPenalty: 1.1,
    });
    expect(generationDefaults({ temperature: 0.7, top_p: 0.9, top_k: 'x' })).toEqual({ temperature: 0.7, topK: undefined, topP: 0.9, repetitionPenalty: undefined });
  });
});

describe('attentionShape (what the GroupQueryAttention rewrite reads from config.json)', () => {
  const smollm = { model_type: 'llama', num_attention_heads: 9, num_key_value_heads: 3, hidden_size: 576, rope_theta: 100000 };

  it('reads heads, KV heads, head size and the rotary base; positions are the context length', () => {
    expect(attentionShape(smollm, 8192)).toEqual({ heads: 9, kvHeads: 3, headDim: 64, ropeTheta: 100000, maxPositions: 8192 });
    expect(attentionShape({ ...smollm, head_dim: 128, rope_theta: undefined }, 10)).toMatchObject({ headDim: 128, ropeTheta: 10000 });
    expect(attentionShape({ ...smollm, num_key_value_heads: undefined }, 10)).toMatchObject({ kvHeads: 9 });
    expect(attentionShape({ ...smollm, rope_scaling: { rope_type: 'default' } }, 10)).toMatchObject({ heads: 9 });
  });

  it('says why a model does not qualify', () => {
    expect(attentionShape({ ...smollm, model_type: 'gemma2' }, 10)).toBe('model_type gemma2 is not one of llama, mistral, qwen2, qwen3');
    expect(attentionShape({ ...smollm, rope_scaling: { rope_type: 'llama3', factor: 8 } }, 10)).toBe('rotary scaling');
    expect(attentionShape({ ...smollm, rope_scaling: { type: 'linear', factor: 2 } }, 10)).toBe('rotary scaling');
    expect(attentionShape({ ...smollm, partial_rotary_factor: 0.5 }, 10)).toBe('partial rotary');
    expect(attentionShape({ ...smollm, model_type: 'mistral', sliding_window: 4096 }, 32768)).toBe('sliding-window attention');
    expect(attentionShape({ ...smollm, model_type: 'qwen2', sliding_window: 4096, use_sliding_window: false }, 32768)).toMatchObject({ heads: 9 });
    expect(attentionShape({ model_type: 'llama' }, 10)).toBe('no head counts in config.json');
  });

  it('is part of modelShape', () => {
    expect(modelShape({ ...smollm, max_position_embeddings: 2048 }).attention).toMatchObject({ maxPositions: 2048 });
  });
});
