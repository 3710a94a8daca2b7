/**
 * The architecture facts of a GGUF file as a transformers-style config.json object, so the rest of
 * edgellm (model-config.ts' modelShape, the graph builder) reads a GGUF model as it reads an HF one.
 * Metadata keys: llama.cpp's `{arch}.*` (gguf.md "LLM" section) and src/llama-model.cpp.
 * @module
 */
import { GgufError, metaNumber, metaOptionalNumber, metaString, type GgufFile } from './reader.js';
import { eogTokenIds } from './tokenizer.js';

export const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2', 'qwen3', 'gemma3'] as const;
export type GgufArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

const HF: Record<GgufArchitecture, { modelType: string; architecture: string; act: string }> = {
  llama: { modelType: 'llama', architecture: 'LlamaForCausalLM', act: 'silu' },
  qwen2: { modelType: 'qwen2', architecture: 'Qwen2ForCausalLM', act: 'silu' },
  qwen3: { modelType: 'qwen3', architecture: 'Qwen3ForCausalLM', act: 'silu' },
  gemma3: { modelType: 'gemma3_text', architecture: 'Gemma3ForCausalLM', act: 'gelu_pytorch_tanh' },
};

/** llama.cpp gemma3: every 6th layer is global, the rest slide (hparams.set_swa_pattern(6)). */
const GEMMA3_SWA_PERIOD = 6;
/** llama.cpp gemma3: the sliding layers' rotary base (rope_freq_base_train_swa). */
const GEMMA3_LOCAL_ROPE_BASE = 10000;

/** The shortest decimal that is the same float32 (GGUF stores 1e-5 as 9.99999974738e-06). */
export function float32Decimal(value: number): number {
  const f = Math.fround(value);
  if (f !== value) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const shorter = Number(value.toPrecision(digits));
    if (Math.fround(shorter) === f) return shorter;
  }
  return value;
}

/** The file's `general.architecture`, or an error naming it and the supported ones. */
export function ggufArchitecture(file: Pick<GgufFile, 'metadata'>): GgufArchitecture {
  const arch = metaString(file, 'general.architecture');
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch ?? '')) {
    throw new GgufError(
      `GGUF architecture ${arch === undefined ? '(missing general.architecture)' : `'${arch}'`} is not supported ` +
        `(supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  }
  return arch as GgufArchitecture;
}

/** A transformers-style config.json for the file's model. */
export function ggufModelConfig(file: Pick<GgufFile, 'metadata' | 'tensors'>): Record<string, unknown> {
  const arch = ggufArchitecture(file);
  const key = (name: string) => `${arch}.${name}`;
  const num = (name: string, fallback?: number) => metaNumber(file, key(name), fallback);
  const opt = (name: string) => metaOptionalNumber(file, key(name));
  const tensor = (name: string) => file.tensors.find((t) => t.name === name);

  const hidden = num('embedding_length');
  const heads = num('attention.head_count');
  const kvHeads = num('attention.head_count_kv', heads);
  // llama.cpp: n_embd_head_k = key_length, else n_embd / n_head; n_rot = rope.dimension_count, else n_embd_head_k.
  const headDim = opt('attention.key_length') ?? hidden / heads;
  const ropeDims = opt('rope.dimension_count') ?? headDim;
  const embedding = tensor('token_embd.weight');
  const tokens = file.metadata['tokenizer.ggml.tokens'];
  const vocabSize = opt('vocab_size') ?? embedding?.dims[1] ?? (Array.isArray(tokens) ? tokens.length : undefined);
  if (vocabSize === undefined) throw new GgufError(`GGUF ${key('vocab_size')} is missing and there is no token_embd.weight`);
  const layers = num('block_count');
  const contextLength = num('context_length');
  const tok = (name: string) => metaOptionalNumber(file, `tokenizer.ggml.${name}`);
  const eos = eogTokenIds(file);

  const config: Record<string, unknown> = {
    architectures: [HF[arch].architecture],
    model_type: HF[arch].modelType,
    vocab_size: vocabSize,
    hidden_size: hidden,
    intermediate_size: num('feed_forward_length'),
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: contextLength,
    rms_norm_eps: float32Decimal(num('attention.layer_norm_rms_epsilon')),
    rope_theta: float32Decimal(num('rope.freq_base', 10000)),
    rope_scaling: ropeScaling(file, arch),
    hidden_act: HF[arch].act,
    attention_bias: tensor('blk.0.attn_q.bias') !== undefined,
    mlp_bias: tensor('blk.0.ffn_up.bias') !== undefined,
    tie_word_embeddings: tensor('output.weight') === undefined,
  };
  if (ropeDims !== headDim) config.partial_rotary_factor = ropeDims / headDim;
  if (tok('bos_token_id') !== undefined) config.bos_token_id = tok('bos_token_id');
  if (eos.length) config.eos_token_id = eos.length === 1 ? eos[0] : eos;
  if (tok('padding_token_id') !== undefined) config.pad_token_id = tok('padding_token_id');
  if (file.tensors.some((t) => t.name === 'rope_freqs.weight')) {
    // Llama 3.1-style rotary: llama.cpp keeps the per-dimension frequency factors as a tensor, not
    // the rope_scaling numbers; the graph builder reads them from that tensor.
    config.rope_freqs_tensor = 'rope_freqs.weight';
  }
  if (arch === 'qwen2') config.use_sliding_window = false;
  if (arch === 'qwen3' || arch === 'gemma3') {
    // Per-head RMSNorm of q and k before rotary (always there in HF's Qwen3 and Gemma3; checked here).
    config.qk_norm = tensor('blk.0.attn_q_norm.weight') !== undefined && tensor('blk.0.attn_k_norm.weight') !== undefined;
  }
  if (arch === 'gemma3') {
    const window = opt('attention.sliding_window');
    const pattern = slidingPattern(file, key('attention.sliding_window_pattern'), layers);
    config.sliding_window = window ?? null;
    config.sliding_window_pattern = GEMMA3_SWA_PERIOD;
    config.layer_types = pattern.map((sliding) => (window && sliding ? 'sliding_attention' : 'full_attention'));
    config.rope_local_base_freq = GEMMA3_LOCAL_ROPE_BASE;
    // llama.cpp: 1/sqrt(head_dim), except Gemma 3 27B (62 layers): 1/sqrt(hidden / heads).
    config.query_pre_attn_scalar = layers === 62 ? hidden / heads : headDim;
    config.final_logit_softcapping = opt('final_logit_softcapping') ?? null;
    config.attn_logit_softcapping = opt('attn_logit_softcapping') ?? null;
  }
  return config;
}

/** Per layer: true where the layer uses the sliding window. */
function slidingPattern(file: Pick<GgufFile, 'metadata'>, key: string, layers: number): boolean[] {
  const v = file.metadata[key];
  if (Array.isArray(v) && v.length === layers) return v.map(Boolean);
  const period = typeof v === 'number' && v > 0 ? v : GEMMA3_SWA_PERIOD;
  return Array.from({ length: layers }, (_, i) => i % period < period - 1);
}

function ropeScaling(file: Pick<GgufFile, 'metadata'>, arch: string): Record<string, unknown> | null {
  const type = metaString(file, `${arch}.rope.scaling.type`);
  const factor = metaOptionalNumber(file, `${arch}.rope.scaling.factor`) ?? metaOptionalNumber(file, `${arch}.rope.scale_linear`);
  if ((type === undefined || type === 'none') && (factor === undefined || factor === 1 || type === 'none')) return null;
  const original = metaOptionalNumber(file, `${arch}.rope.scaling.original_context_length`);
  const scaling: Record<string, unknown> = { rope_type: type ?? 'linear', factor: float32Decimal(factor ?? 1) };
  if (original !== undefined) scaling.original_max_position_embeddings = original;
  return scaling;
}
