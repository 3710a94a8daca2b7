import { describe, expect, it } from 'vitest';
import { configDtype, generationDefaults, isDtype, modelShape, onnxFileName } from './model-config.js';

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
      contextLength: 512, hiddenSize: 64, eosTokenIds: [2, 1, 2],
    });
    expect(modelShape({ n_positions: 1024 })).toEqual({ contextLength: 1024, hiddenSize: 0, eosTokenIds: [] });
    expect(modelShape({}).contextLength).toBe(2048);
  });

  it('makes do_sample: false greedy and keeps numeric sampling fields', () => {
    expect(generationDefaults({ do_sample: false, temperature: 0.7, top_k: 5, repetition_penalty: 1.1 })).toEqual({
      temperature: 0, topK: undefined, topP: undefined, repetitionPenalty: 1.1,
    });
    expect(generationDefaults({ temperature: 0.7, top_p: 0.9, top_k: 'x' })).toEqual({ temperature: 0.7, topK: undefined, topP: 0.9, repetitionPenalty: undefined });
  });
});
