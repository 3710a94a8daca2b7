/**
 * What a transformers.js-layout model directory says about itself, read from its parsed JSON
 * files: the ONNX file of each dtype, the shape the engine needs, and the sampling defaults.
 * Shared by the Node adapter (files on disk) and the web adapter (files through fetch).
 * @module
 */
import type { GenerationDefaults } from '../runtime/types.js';
import type { AttentionShape } from '../onnx/onnx-attention-fusion.js';

export const DTYPES = ['fp32', 'fp16', 'q8', 'q4'] as const;
export type Dtype = (typeof DTYPES)[number];

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

/**
 * The dtypes to try, in order: the requested one alone; else config.json's preference, then
 * DTYPE_PICK_ORDER. The one rule for every place that chooses an ONNX file (a local directory, a
 * Hub download, files behind fetch), so they cannot drift apart.
 */
export function dtypeCandidates(config: Record<string, any> | undefined, requested?: Dtype): Dtype[] {
  if (requested) return [requested];
  const preferred = config ? configDtype(config) : undefined;
  return [...new Set([...(preferred ? [preferred] : []), ...DTYPE_PICK_ORDER])];
}

/**
 * The first candidate whose ONNX file `present` finds (it may fetch). Throws the one message for a
 * model without the file: `where` names the model, `listed` (when known) what its onnx/ folder has.
 */
export async function chooseDtype(
  config: Record<string, any> | undefined,
  requested: Dtype | undefined,
  present: (dtype: Dtype) => boolean | Promise<boolean>,
  where: string,
  listed?: string[],
): Promise<Dtype> {
  const candidates = dtypeCandidates(config, requested);
  for (const dtype of candidates) if (await present(dtype)) return dtype;
  throw new Error(missingOnnxMessage(candidates, requested, where, listed));
}

/** Synchronous twin of chooseDtype, for a listing already in hand. */
export function chooseDtypeFrom(config: Record<string, any> | undefined, requested: Dtype | undefined, files: string[], where: string): Dtype {
  const candidates = dtypeCandidates(config, requested);
  const found = candidates.find((dtype) => files.includes(onnxFileName(dtype)));
  if (found) return found;
  throw new Error(missingOnnxMessage(candidates, requested, where, files));
}

function missingOnnxMessage(candidates: Dtype[], requested: Dtype | undefined, where: string, listed?: string[]): string {
  const present = listed && ` (ONNX files present: ${listed.length ? listed.map((f) => `onnx/${f}`).join(', ') : 'none'})`;
  return requested
    ? `dtype ${requested} needs onnx/${onnxFileName(requested)}, which ${where} does not have${present ?? ''}. Pick another dtype or omit it.`
    : `No ONNX model in ${where} (tried ${candidates.map((d) => `onnx/${onnxFileName(d)}`).join(', ')})${present ?? ''}.`;
}

export interface ModelShape {
  contextLength: number;
  hiddenSize: number;
  /** For the GroupQueryAttention rewrite, or why it does not apply. */
  attention: AttentionShape | string;
  /** EOS ids from generation_config.json, then config.json. */
  eosTokenIds: number[];
  /** What the ONNX graph must agree with (checked when it is loaded): only the fields config.json gives. */
  expected: GraphExpectations;
}

/** Sizes config.json states that the ONNX graph shows too. */
export interface GraphExpectations {
  vocabSize?: number;
  layers?: number;
  kvHeads?: number;
  headDim?: number;
}

/** Size fields of config.json that must be positive integers when present. */
const SIZE_FIELDS = [
  'max_position_embeddings', 'n_positions', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim',
  'num_hidden_layers', 'vocab_size', 'intermediate_size',
];

/**
 * Refuses config values that cannot describe a model (a negative context, a head count that does
 * not divide the hidden size): they would otherwise surface as wrong output or a crash mid-request.
 * `file` names the config in the message.
 */
export function checkConfig(config: Record<string, any>, file: string): void {
  for (const key of SIZE_FIELDS) {
    const v = config[key];
    if (v !== undefined && v !== null && !(Number.isInteger(v) && v > 0)) {
      throw new Error(`${file}: ${key} must be a positive integer, got ${JSON.stringify(v)}.`);
    }
  }
  const heads = config.num_attention_heads;
  const kvHeads = config.num_key_value_heads;
  if (heads && kvHeads && heads % kvHeads !== 0) {
    throw new Error(`${file}: num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads}).`);
  }
  if (heads && config.hidden_size && !config.head_dim && config.hidden_size % heads !== 0) {
    throw new Error(`${file}: hidden_size (${config.hidden_size}) must be a multiple of num_attention_heads (${heads}).`);
  }
}

/** What the graph should show, from config.json (absent fields are not checked). */
export function graphExpectations(config: Record<string, any>): GraphExpectations {
  const heads = config.num_attention_heads;
  return {
    vocabSize: config.vocab_size,
    layers: config.num_hidden_layers,
    kvHeads: config.num_key_value_heads ?? heads,
    headDim: config.head_dim ?? (heads && config.hidden_size ? config.hidden_size / heads : undefined),
  };
}

const asList = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'number') : typeof v === 'number' ? [v] : []);

export function modelShape(config: Record<string, any>, generation: Record<string, any> = {}): ModelShape {
  const contextLength = config.max_position_embeddings ?? config.n_positions ?? 2048;
  return {
    contextLength,
    hiddenSize: config.hidden_size ?? 0,
    attention: attentionShape(config, contextLength),
    eosTokenIds: [...asList(generation.eos_token_id), ...asList(config.eos_token_id)],
    expected: graphExpectations(config),
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

/**
 * The name clients send as `model` when none is configured: a Hub id as given, else the last
 * segment of the model's directory path or URL.
 */
export function defaultModelName(location: string, hubId?: string): string {
  if (hubId) return hubId;
  let path = location;
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(location)) path = decodeURIComponent(new URL(location).pathname);
  return path.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || location;
}

/** The configured names, or the default one. */
export function servedModelNames(configured: string[] | undefined, location: string, hubId?: string): string[] {
  return configured?.length ? configured : [defaultModelName(location, hubId)];
}

/** What the engine needs of a sentence-embedding model's config.json. */
export function embeddingShape(config: Record<string, any>): { dimensions: number; contextLength: number } {
  return { dimensions: config.hidden_size ?? 0, contextLength: config.max_position_embeddings ?? 512 };
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
