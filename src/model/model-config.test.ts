import { describe, expect, it } from 'vitest';
import { attentionShape, checkConfig, chooseDtype, chooseDtypeFrom, configDtype, defaultModelName, dtypeCandidates, embeddingShape, generationDefaults, graphExpectations, servedModelNames, isDtype, modelShape, onnxFileName } from './model-config.js';

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

  it('chooses the ONNX file by one rule: the request alone, else the config preference, then fp32, q8, q4, fp16', async () => {
    const prefersQ8 = { 'transformers.js_config': { dtype: 'q8' } };
    expect(dtypeCandidates(prefersQ8)).toEqual(['q8', 'fp32', 'q4', 'fp16']);
    expect(dtypeCandidates(prefersQ8, 'q4')).toEqual(['q4']);
    expect(dtypeCandidates(undefined)).toEqual(['fp32', 'q8', 'q4', 'fp16']);
    // A preferred file that is missing falls back (the web adapter used to fail here) ...
    expect(chooseDtypeFrom(prefersQ8, undefined, ['model.onnx'], 'dir')).toBe('fp32');
    // ... and an fp16-only model is found (the Hub download used to skip fp16).
    const probed: string[] = [];
    const present = (d: string) => {
      probed.push(d);
      return d === 'fp16';
    };
    expect(await chooseDtype({}, undefined, present, 'owner/name')).toBe('fp16');
    expect(probed).toEqual(['fp32', 'q8', 'q4', 'fp16']);
    await expect(chooseDtype({}, 'q4', () => false, 'owner/name')).rejects.toThrow('dtype q4 needs onnx/model_q4.onnx, which owner/name does not have. Pick another dtype or omit it.');
    expect(() => chooseDtypeFrom({}, undefined, ['decoder.onnx'], 'dir')).toThrow(/No ONNX model in dir \(tried onnx\/model\.onnx, .*\) \(ONNX files present: onnx\/decoder\.onnx\)/);
  });

  it('names a served model as both adapters do: the Hub id, else the last path or URL segment', () => {
    expect(defaultModelName('/models/karpathy__stories260K/')).toBe('karpathy__stories260K');
    expect(defaultModelName('C:\\models\\tiny')).toBe('tiny');
    expect(defaultModelName('https://cdn.example/models/my%20model/')).toBe('my model');
    expect(defaultModelName('/cache/owner--name/main', 'owner/name')).toBe('owner/name');
    expect(servedModelNames(['a', 'b'], '/x/y')).toEqual(['a', 'b']);
    expect(servedModelNames([], '/x/y')).toEqual(['y']);
    expect(embeddingShape({ hidden_size: 64 })).toEqual({ dimensions: 64, contextLength: 512 });
    expect(embeddingShape({ hidden_size: 8, max_position_embeddings: 128 })).toEqual({ dimensions: 8, contextLength: 128 });
  });

  it('reads the context, hidden size and EOS ids (generation config first)', () => {
    expect(modelShape({ max_position_embeddings: 512, hidden_size: 64, eos_token_id: 2 }, { eos_token_id: [2, 1] })).toEqual({
      contextLength: 512, hiddenSize: 64, eosTokenIds: [2, 1, 2], attention: 'model_type (none) is not one of llama, mistral, qwen2, qwen3',
      expected: { vocabSize: undefined, layers: undefined, kvHeads: undefined, headDim: undefined },
    });
    expect(modelShape({ n_positions: 1024 })).toMatchObject({ contextLength: 1024, hiddenSize: 0, eosTokenIds: [] });
    expect(modelShape({}).contextLength).toBe(2048);
  });

  it('refuses nonsensical sizes, naming the file and the field', () => {
    expect(() => checkConfig({ max_position_embeddings: -5 }, 'm/config.json')).toThrow(/m\/config.json: max_position_embeddings must be a positive integer, got -5/);
    expect(() => checkConfig({ hidden_size: '64' }, 'c.json')).toThrow(/hidden_size/);
    expect(() => checkConfig({ num_attention_heads: 8, num_key_value_heads: 3 }, 'c.json')).toThrow(/multiple of num_key_value_heads/);
    expect(() => checkConfig({ num_attention_heads: 6, hidden_size: 64 }, 'c.json')).toThrow(/multiple of num_attention_heads/);
    expect(() => checkConfig({ num_attention_heads: 8, num_key_value_heads: 4, hidden_size: 64, max_position_embeddings: 512 }, 'c.json')).not.toThrow();
    expect(graphExpectations({ num_attention_heads: 8, num_key_value_heads: 4, hidden_size: 64, num_hidden_layers: 5, vocab_size: 512 })).toEqual({
      vocabSize: 512, layers: 5, kvHeads: 4, headDim: 8,
    });
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
