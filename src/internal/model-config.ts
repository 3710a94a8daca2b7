/**
 * What a transformers.js-layout model directory says about itself, read from its parsed JSON
 * files: the ONNX file of each dtype, the shape the engine needs, and the sampling defaults.
 * Shared by the Node adapter (files on disk) and the web adapter (files through fetch).
 * @module
 */
import type { GenerationDefaults } from '../runtime/types.js';

export type Dtype = 'fp32' | 'fp16' | 'q8' | 'q4';

const SUFFIX: Record<Dtype, string> = { fp32: '', fp16: '_fp16', q8: '_quantized', q4: '_q4' };
/** Without a requested dtype, the first of these that exists is used. */
export const DTYPE_PICK_ORDER: Dtype[] = ['fp32', 'q8', 'q4', 'fp16'];

/** fp32 -> model.onnx, fp16 -> model_fp16.onnx, q8 -> model_quantized.onnx, q4 -> model_q4.onnx (transformers.js naming) */
export function onnxFileName(dtype: Dtype, base = 'model'): string {
  return `${base}${SUFFIX[dtype]}.onnx`;
}

export const isDtype = (value: unknown): value is Dtype => typeof value === 'string' && value in SUFFIX;

/** config.json's `transformers.js_config.dtype` when it is one of ours (a per-module object is ignored). */
export function configDtype(config: Record<string, any>): Dtype | undefined {
  const d = config?.['transformers.js_config']?.dtype;
  return isDtype(d) ? d : undefined;
}

export interface ModelShape {
  contextLength: number;
  hiddenSize: number;
  /** EOS ids from generation_config.json, then config.json. */
  eosTokenIds: number[];
}

const asList = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'number') : typeof v === 'number' ? [v] : []);

export function modelShape(config: Record<string, any>, generation: Record<string, any> = {}): ModelShape {
  return {
    contextLength: config.max_position_embeddings ?? config.n_positions ?? 2048,
    hiddenSize: config.hidden_size ?? 0,
    eosTokenIds: [...asList(generation.eos_token_id), ...asList(config.eos_token_id)],
  };
}

/** generation_config.json sampling fields; `do_sample: false` makes greedy the default. */
export function generationDefaults(g: Record<string, unknown>): GenerationDefaults {
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return {
    temperature: g.do_sample === false ? 0 : num(g.temperature),
    topK: g.do_sample === false ? undefined : num(g.top_k),
    topP: g.do_sample === false ? undefined : num(g.top_p),
    repetitionPenalty: num(g.repetition_penalty),
  };
}
