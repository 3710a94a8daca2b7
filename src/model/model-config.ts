/**
 * What a transformers.js-layout model directory says about itself, read from its parsed JSON
 * files: the ONNX file of each dtype, the shape the engine needs, and the sampling defaults.
 * Shared by the Node adapter (files on disk) and the web adapter (files through fetch).
 * @module
 */
import type { GenerationDefaults } from '../runtime/types.js';
import type { AttentionShape } from '../onnx/onnx-attention-fusion.js';

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
  /** For the GroupQueryAttention rewrite, or why it does not apply. */
  attention: AttentionShape | string;
  /** EOS ids from generation_config.json, then config.json. */
  eosTokenIds: number[];
}

const asList = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'number') : typeof v === 'number' ? [v] : []);

export function modelShape(config: Record<string, any>, generation: Record<string, any> = {}): ModelShape {
  const contextLength = config.max_position_embeddings ?? config.n_positions ?? 2048;
  return {
    contextLength,
    hiddenSize: config.hidden_size ?? 0,
    attention: attentionShape(config, contextLength),
    eosTokenIds: [...asList(generation.eos_token_id), ...asList(config.eos_token_id)],
  };
}

/**
 * Architectures whose attention is plain: scale 1/sqrt(head size), full rotate-half rotary, no soft-capping.
 * qwen3's per-head q/k RMSNorm qualifies where it sits before the head split (the GGUF import writes it
 * so); an export with the norm between split and transpose is declined by the rewrite's matcher.
 */
const PLAIN_ATTENTION = new Set(['llama', 'mistral', 'qwen2', 'qwen3']);

/**
 * What the GroupQueryAttention rewrite needs from config.json, or why the model does not qualify.
 * Rotary scaling (llama3, yarn, linear, dynamic), partial rotary, sliding windows and
 * architectures with other attention math are left to the exported graph.
 */
export function attentionShape(config: Record<string, any>, contextLength: number): AttentionShape | string {
  const type = config.model_type;
  if (!PLAIN_ATTENTION.has(type)) return `model_type ${type ?? '(none)'} is not one of ${[...PLAIN_ATTENTION].join(', ')}`;
  const scaling = config.rope_scaling;
  if (scaling && (scaling.rope_type ?? scaling.type ?? 'default') !== 'default') return 'rotary scaling';
  if ((config.partial_rotary_factor ?? 1) !== 1) return 'partial rotary';
  if (config.sliding_window && (type === 'mistral' || config.use_sliding_window) && config.sliding_window < contextLength) return 'sliding-window attention';
  const heads = config.num_attention_heads;
  const kvHeads = config.num_key_value_heads ?? heads;
  const headDim = config.head_dim ?? config.hidden_size / heads;
  if (![heads, kvHeads, headDim].every((n) => Number.isInteger(n) && n > 0)) return 'no head counts in config.json';
  return { heads, kvHeads, headDim, ropeTheta: config.rope_theta ?? 10000, maxPositions: contextLength };
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
