/**
 * GGUF weights -> the ONNX decoder graph the engine runs (the optimum-style interface: input_ids,
 * attention_mask, position_ids, past_key_values.N.key/value -> logits, present.N.key/value), for
 * the llama (Llama 2/3, SmolLM, Mistral without sliding window), qwen2, qwen3 and gemma3 architectures.
 *
 * The attention is written as plain ops in the form an export has (rotate-half rotary from
 * position_ids, as com.microsoft.RotaryEmbedding; KV Concat; softmax(QKᵀ/√d + mask)·V with the query
 * heads of each KV head stacked as rows of one matmul), so the load-time GroupQueryAttention rewrite
 * (onnx-attention-fusion.ts) and its probe apply on the CPU, and the web adapter runs the same file
 * as it is. Every matmul of a step has at least two rows for a grouped model, which keeps multi-token
 * steps bit-identical to single steps where the matmuls' own kernels are (ARCHITECTURE.md,
 * "Row-invariant steps").
 *
 * Weights: a quantized GGUF tensor that has an exact block form (`BlockQuant`) becomes a
 * com.microsoft MatMulNBits with the default zero point; a per-block minimum (Q4_1, Q4_K, Q5_1,
 * Q5_K) is added exactly as `ReduceSum(x over each block) @ offsets`. F32/F16/BF16 tensors and
 * quantized ones without a block form become float32 MatMuls (dequantized; reported). The token
 * embedding stays quantized: a Gather of its blocks, dequantized in the graph, reading the same
 * initializers as the tied LM head's MatMulNBits.
 * @module
 */
import type { BlockQuant } from '../gguf/quants.js';
import type { LoraStack } from '../lora/lora-stack.js';
import { loraProjectionHook, type LoraForm } from './gguf-lora-graph.js';
import { MemorySink, OnnxGraphWriter, TensorType, type ExternalDataSink } from './onnx-graph-writer.js';
import { concatFloats } from '../internal/vector.js';

export type { BlockQuant };

/** A GGUF tensor as the reader returns it (ggml order: dims[0] = input features). */
export interface SourceTensor {
  name: string;
  type: string;
  dims: number[];
  data: Uint8Array;
}

/** The GGUF weight decoders (src/gguf/quants.ts), passed in. */
export interface WeightCodec {
  dequantize(tensor: SourceTensor): Float32Array;
  toBlockQuant(tensor: SourceTensor): BlockQuant | undefined;
}

export const SUPPORTED_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma3'] as const;

export interface DecoderSpec {
  architecture: (typeof SUPPORTED_ARCHITECTURES)[number];
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  ropeTheta: number;
  rmsEps: number;
  /** Gemma 3: the parts that differ from the llama-style block. */
  gemma?: GemmaSpec;
}

export interface GemmaSpec {
  /** Per layer: true where attention only sees the last `slidingWindow` positions. */
  sliding: boolean[];
  slidingWindow: number;
  /** Rotary base of the sliding layers (the global ones use `ropeTheta`). */
  localRopeTheta: number;
  /** Scores are scaled by queryPreAttnScalar^-0.5. */
  queryPreAttnScalar: number;
  /** tanh soft-capping of the logits, when set. */
  finalLogitSoftcap?: number;
}

/**
 * The decoder shape from a transformers-style config (what src/gguf/config.ts makes of the GGUF
 * metadata). Other architectures are refused with their name and the supported ones.
 */
export function decoderSpec(config: Record<string, any>): DecoderSpec {
  const type = config.model_type === 'gemma3_text' ? 'gemma3' : config.model_type;
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(type)) {
    throw new Error(`GGUF architecture "${type}" is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')}).`);
  }
  if ((config.partial_rotary_factor ?? 1) !== 1) throw new Error(`GGUF model uses partial rotary (${config.partial_rotary_factor}), which this importer does not build.`);
  if (config.attn_logit_softcapping) throw new Error('GGUF model uses attention logit soft-capping, which this importer does not build.');
  if (type === 'mistral' && config.sliding_window && config.sliding_window < (config.max_position_embeddings ?? Infinity)) {
    throw new Error(`GGUF model uses sliding-window attention (${config.sliding_window} tokens), which this importer does not build.`);
  }
  const scaling = config.rope_scaling;
  if (scaling && !['default', 'llama3'].includes(scaling.rope_type ?? scaling.type ?? 'default')) {
    throw new Error(`GGUF model uses rotary scaling "${scaling.rope_type ?? scaling.type}", which this importer does not build.`);
  }
  const heads = config.num_attention_heads;
  const spec: DecoderSpec = {
    architecture: type,
    hidden: config.hidden_size,
    layers: config.num_hidden_layers,
    heads,
    kvHeads: config.num_key_value_heads ?? heads,
    headDim: config.head_dim ?? config.hidden_size / heads,
    vocab: config.vocab_size,
    ropeTheta: config.rope_theta ?? 10000,
    rmsEps: config.rms_norm_eps ?? 1e-5,
  };
  if (type === 'gemma3') {
    const layerTypes: unknown[] = config.layer_types ?? [];
    spec.gemma = {
      sliding: Array.from({ length: spec.layers }, (_, i) => layerTypes[i] === 'sliding_attention'),
      slidingWindow: config.sliding_window ?? Infinity,
      localRopeTheta: config.rope_local_base_freq ?? 10000,
      queryPreAttnScalar: config.query_pre_attn_scalar ?? spec.headDim,
      finalLogitSoftcap: config.final_logit_softcapping ?? undefined,
    };
  }
  for (const [key, value] of Object.entries(spec)) {
    if (typeof value === 'number' && !(value > 0)) throw new Error(`GGUF model config: ${key} is missing or invalid (${value}).`);
  }
  if (spec.heads % spec.kvHeads !== 0 || spec.headDim % 2 !== 0) throw new Error(`GGUF model config: ${spec.heads} heads over ${spec.kvHeads} KV heads of size ${spec.headDim} do not fit.`);
  return spec;
}

export interface DecoderBuildOptions {
  /** 'quantized' (default): exact block forms as MatMulNBits; 'fp32': every weight dequantized to float32. */
  dtype?: 'quantized' | 'fp32';
  /** accuracy_level of 4-bit MatMulNBits: 0 = float32 compute (exact weights, no activation rounding), 4 = int8 activations. */
  accuracyLevel4?: number;
  /** accuracy_level of 8-bit MatMulNBits (default 4: onnxruntime has no fast 8-bit kernel with float32 compute). */
  accuracyLevel8?: number;
  /** Called once per GGUF tensor converted (progress: its data bytes). */
  onTensor?: (tensor: SourceTensor) => void;
  /** LoRA adapters applied at run time, chosen per row by the `lora_index` input (gguf-lora-graph.ts). */
  lora?: LoraStack;
  /** How each row's adapter is picked (gguf-lora-graph.ts; default `auto`). */
  loraForm?: LoraForm;
}

export interface DecoderBuildResult {
  model: Uint8Array;
  /** How each kind of tensor was mapped: "<GGUF type> -> <form>" -> tensor names. */
  mapping: Map<string, string[]>;
  /** Bytes of weights written. */
  weightBytes: number;
}

/** One line per mapping kind, for the startup log. */
export function describeMapping(mapping: Map<string, string[]>): string[] {
  return [...mapping].map(([kind, names]) => `${names.length} x ${kind}${names.length <= 3 ? ` (${names.join(', ')})` : ''}`);
}

const FLOAT_TYPES = new Set(['F32', 'F16', 'BF16']);
const FLT_LOWEST = -3.4028234663852886e38;

/** Builds the ONNX model; large initializers go to `sink` (model.onnx.data). */
export function buildDecoderGraph(
  spec: DecoderSpec,
  tensors: readonly SourceTensor[],
  codec: WeightCodec,
  sink: ExternalDataSink,
  options: DecoderBuildOptions = {},
): DecoderBuildResult {
  const { hidden: D, layers: L, heads: H, kvHeads: KV, headDim: hd } = spec;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const quantized = (options.dtype ?? 'quantized') === 'quantized';
  const level4 = options.accuracyLevel4 ?? 0;
  const level8 = options.accuracyLevel8 ?? 4;
  const g = new OnnxGraphWriter(sink);
  const mapping = new Map<string, string[]>();
  const note = (kind: string, name: string) => mapping.set(kind, [...(mapping.get(kind) ?? []), name]);
  const used = new Set<string>();

  const need = (name: string): SourceTensor => {
    const t = byName.get(name);
    if (!t) throw new Error(`GGUF file has no tensor ${name} (architecture ${spec.architecture}).`);
    return t;
  };
  const floats = (t: SourceTensor): Float32Array => {
    const values = codec.dequantize(t);
    note(`${t.type} -> float32${t.type === 'F32' ? '' : FLOAT_TYPES.has(t.type) ? ' (exact)' : ' (dequantized)'}`, t.name);
    used.add(t.name);
    options.onTensor?.(t);
    return values;
  };
  const embed = byName.get('token_embd.weight') ?? need('token_embd.weight');
  const V = embed.dims[1];

  // ---- inputs / outputs
  g.input('input_ids', TensorType.INT64, ['batch_size', 'sequence_length']);
  g.input('attention_mask', TensorType.INT64, ['batch_size', 'total_sequence_length']);
  g.input('position_ids', TensorType.INT64, ['batch_size', 'sequence_length']);
  // How many of the last positions get logits (transformers' `logits_to_keep`): a prefill needs one
  // row, not the LM head over every prompt token (for SmolLM2, 49152 x 576 per token, and 100 MB of
  // output for 512 tokens).
  g.input(LOGITS_TO_KEEP, TensorType.INT64, [1]);
  for (let l = 0; l < L; l++) {
    for (const kv of ['key', 'value']) {
      g.input(`past_key_values.${l}.${kv}`, TensorType.FLOAT, ['batch_size', KV, 'past_sequence_length', hd]);
    }
  }
  g.output('logits', TensorType.FLOAT, ['batch_size', 'logits_length', V]);
  for (let l = 0; l < L; l++) {
    for (const kv of ['key', 'value']) g.output(`present.${l}.${kv}`, TensorType.FLOAT, ['batch_size', KV, 'total_sequence_length', hd]);
  }
  const loraHook = options.lora && loraProjectionHook(g, options.lora, options.loraForm);

  // ---- shared constants
  const shapeCache = new Map<string, string>();
  const shape = (values: number[]) => {
    const key = values.join(',');
    if (!shapeCache.has(key)) shapeCache.set(key, g.i64(values));
    return shapeCache.get(key)!;
  };
  const scalarCache = new Map<number, string>();
  const scalar = (v: number) => {
    if (!scalarCache.has(v)) scalarCache.set(v, g.scalar(v));
    return scalarCache.get(v)!;
  };

  // ---- weights
  /** Block sums of x ([B, S, K] -> [B, S, K / blockSize]), shared by the projections reading x. */
  const blockSums = new Map<string, string>();
  const sumsOf = (x: string, blockSize: number) => {
    const key = `${x}|${blockSize}`;
    if (!blockSums.has(key)) {
      const blocks = g.op1('Reshape', [x, shape([0, 0, -1, blockSize])]);
      blockSums.set(key, g.op1('ReduceSum', [blocks, shape([-1])], { keepdims: 0 }));
    }
    return blockSums.get(key)!;
  };

  /** MatMulNBits B and scales initializers for a block form (rows = N output features). */
  const nbitsTensors = (name: string, bq: BlockQuant) => {
    const nb = bq.cols / bq.blockSize;
    const blob = (bq.blockSize * bq.bits) / 8;
    let packed: Uint8Array;
    if (bq.bits === 8) packed = bq.q;
    else {
      packed = new Uint8Array(bq.q.length / 2);
      for (let i = 0; i < packed.length; i++) packed[i] = (bq.q[2 * i] & 15) | ((bq.q[2 * i + 1] & 15) << 4);
    }
    const B = g.tensor(`${name}_Q${bq.bits}`, TensorType.UINT8, [bq.rows, nb, blob], packed);
    const scales = g.f32(`${name}_scales`, bq.scales, [bq.rows * nb]);
    const offsets = bq.offsets && g.f32(`${name}_offsets`, bq.offsets, [bq.rows, nb]);
    return { B, scales, offsets, nb };
  };

  const matMulNBits = (x: string, bq: BlockQuant, t: { B: string; scales: string; offsets?: string }) => {
    const level = bq.bits === 4 ? level4 : level8;
    const y = g.op1(
      'MatMulNBits',
      [x, t.B, t.scales],
      { K: bq.cols, N: bq.rows, bits: bq.bits, block_size: bq.blockSize, ...(level ? { accuracy_level: level } : {}) },
      'com.microsoft',
    );
    if (!t.offsets) return y;
    // offsets are [N, nb]; the MatMul wants [nb, N] (a constant Transpose, folded at load).
    const offT = g.op1('Transpose', [t.offsets], { perm: [1, 0] });
    return g.op1('Add', [y, g.op1('MatMul', [sumsOf(x, bq.blockSize), offT])]);
  };

  const blockForm = (t: SourceTensor): BlockQuant | undefined => (quantized && !FLOAT_TYPES.has(t.type) ? codec.toBlockQuant(t) : undefined);
  const formName = (t: SourceTensor, bq: BlockQuant) =>
    `${t.type} -> ${bq.bits}-bit MatMulNBits, block ${bq.blockSize}${bq.offsets ? ' + block offsets' : ''} (exact)`;

  /** x @ Wᵀ for a GGUF weight [rows = out, cols = in]; `perm` reorders the output rows; plus run-time LoRA. */
  const linear = (x: string, name: string, t: SourceTensor, perm?: Int32Array): string => {
    const y = baseLinear(x, name, t, perm);
    return loraHook ? loraHook(x, t.name, y) : y;
  };
  const baseLinear = (x: string, name: string, t: SourceTensor, perm?: Int32Array): string => {
    const rows = t.dims[1];
    const cols = t.dims[0];
    const bq = blockForm(t);
    if (bq) {
      if (bq.rows !== rows || bq.cols !== cols) throw new Error(`${t.name}: block form is ${bq.rows}x${bq.cols}, expected ${rows}x${cols}`);
      note(formName(t, bq), t.name);
      used.add(t.name);
      options.onTensor?.(t);
      const form = perm ? permuteBlockQuant(bq, perm) : bq;
      return matMulNBits(x, form, nbitsTensors(name, form));
    }
    let w = floats(t);
    if (perm) w = permuteRows(w, cols, perm);
    return g.op1('MatMul', [x, g.f32(name, transpose(w, rows, cols), [cols, rows])]);
  };

  const vector = (name: string, t: SourceTensor) => g.f32(name, floats(t), [t.dims[0]]);

  /**
   * Projections of the same input x (q/k/v, gate/up) as one MatMulNBits over their rows stacked
   * (name: the packed weight's), with one offsets MatMul (a part without offsets contributes zeros,
   * which add exactly nothing) and `bias` added once; a Split gives each part's output. Undefined,
   * and nothing written, unless every part has a block form of the same bits, block size and input
   * width: then the caller runs one `linear` each. Same weights, same per-row arithmetic: each
   * output column is the same dot product as in its own matmul.
   */
  const packedLinear = (x: string, name: string, parts: { t: SourceTensor; perm?: Int32Array }[], bias?: Float32Array): string[] | undefined => {
    const forms = parts.map((p) => blockForm(p.t));
    const first = forms[0];
    if (!first || forms.some((f) => !f || f.bits !== first.bits || f.blockSize !== first.blockSize || f.cols !== first.cols)) return undefined;
    const blocks = parts.map((p, i) => {
      const bq = forms[i]!;
      if (bq.rows !== p.t.dims[1] || bq.cols !== p.t.dims[0]) throw new Error(`${p.t.name}: block form is ${bq.rows}x${bq.cols}, expected ${p.t.dims[1]}x${p.t.dims[0]}`);
      note(formName(p.t, bq), p.t.name);
      used.add(p.t.name);
      options.onTensor?.(p.t);
      return p.perm ? permuteBlockQuant(bq, p.perm) : bq;
    });
    const nb = first.cols / first.blockSize;
    const stacked: BlockQuant = {
      bits: first.bits,
      blockSize: first.blockSize,
      rows: blocks.reduce((n, b) => n + b.rows, 0),
      cols: first.cols,
      q: concatBytes(blocks.map((b) => b.q)),
      scales: concatFloats(blocks.map((b) => b.scales)),
      offsets: blocks.some((b) => b.offsets) ? concatFloats(blocks.map((b) => b.offsets ?? new Float32Array(b.rows * nb))) : undefined,
    };
    let y = matMulNBits(x, stacked, nbitsTensors(`${name}.weight`, stacked));
    if (bias) y = g.op1('Add', [y, g.f32(`${name}.bias`, bias)]);
    const outs = g.op('Split', [y, shape(blocks.map((b) => b.rows))], { axis: -1 }, { outputs: parts.length });
    // Run-time LoRA applies to each logical projection, after the split (the bias is already in: addition commutes).
    return loraHook ? outs.map((o, i) => loraHook(x, parts[i].t.name, o)) : outs;
  };

  // ---- token embedding (and the tied LM head's weights)
  const embedForm = blockForm(embed);
  let embedQuant: { bq: BlockQuant; B: string; scales: string; offsets?: string } | undefined;
  let x: string;
  if (embedForm) {
    note(formName(embed, embedForm).replace('MatMulNBits', 'blocks (Gather, and MatMulNBits where tied)'), embed.name);
    used.add(embed.name);
    options.onTensor?.(embed);
    const t = nbitsTensors('model.embed_tokens.weight', embedForm);
    embedQuant = { bq: embedForm, ...t };
    const rows = g.op1('Cast', [g.op1('Gather', [t.B, 'input_ids'], { axis: 0 })], { to: TensorType.FLOAT }); // [B,S,nb,blob]
    let q = rows;
    if (embedForm.bits === 4) {
      const hi = g.op1('Floor', [g.op1('Mul', [rows, scalar(1 / 16)])]);
      const lo = g.op1('Sub', [rows, g.op1('Mul', [hi, scalar(16)])]);
      const pair = g.op1('Concat', [g.op1('Unsqueeze', [lo, shape([-1])]), g.op1('Unsqueeze', [hi, shape([-1])])], { axis: -1 });
      q = g.op1('Reshape', [pair, shape([0, 0, t.nb, embedForm.blockSize])]);
    }
    const scales = g.op1('Reshape', [t.scales, shape([V, t.nb, 1])]);
    let w = g.op1('Mul', [g.op1('Sub', [q, scalar(2 ** (embedForm.bits - 1))]), g.op1('Gather', [scales, 'input_ids'], { axis: 0 })]);
    if (t.offsets) w = g.op1('Add', [w, g.op1('Gather', [g.op1('Reshape', [t.offsets, shape([V, t.nb, 1])]), 'input_ids'], { axis: 0 })]);
    x = g.op1('Reshape', [w, shape([0, 0, D])]);
  } else {
    const E = g.f32('model.embed_tokens.weight', floats(embed), [V, D]);
    x = g.op1('Gather', [E, 'input_ids'], { axis: 0 });
  }

  // Gemma scales the embedding by sqrt(hidden) (rounded to float32, as HF does in the model's dtype).
  if (spec.gemma) x = g.op1('Mul', [x, scalar(Math.fround(Math.sqrt(D)))]);

  // ---- rotary: one com.microsoft.RotaryEmbedding per Q/K (rotate-half, non-interleaved), on tables with one
  // row per position of the call ([B*S, hd/2], rows indexed by `rowIds` [B, S]) made once per call and base,
  // instead of six ops per Q/K per layer (Split, Neg, Concat, two Mul, Add).
  const factors = byName.get('rope_freqs.weight');
  const factorValues = factors ? floats(factors) : undefined;
  const pos = g.op1('Reshape', [g.op1('Cast', ['position_ids'], { to: TensorType.FLOAT }), shape([-1, 1])]);
  const rowIds = g.op1('Reshape', [g.op1('Range', [g.i64([0], []), g.op1('Size', ['position_ids']), g.i64([1], [])]), g.op1('Shape', ['position_ids'])]);
  const tables = new Map<number, { cos: string; sin: string }>();
  const rotary = (theta: number) => {
    if (!tables.has(theta)) {
      const invFreq = new Float32Array(hd / 2);
      for (let i = 0; i < hd / 2; i++) invFreq[i] = 1 / Math.pow(theta, (2 * i) / hd) / (factorValues?.[i] ?? 1);
      const freqs = g.op1('Mul', [pos, g.f32(tables.size ? `rotary_emb_${theta}.inv_freq` : 'rotary_emb.inv_freq', invFreq)]);
      tables.set(theta, { cos: g.op1('Cos', [freqs]), sin: g.op1('Sin', [freqs]) });
    }
    return tables.get(theta)!;
  };
  /** Rotary position embedding of `t` [B, heads, S, hd]. */
  const rope = (t: string, theta: number) => {
    const { cos, sin } = rotary(theta);
    return g.op1('RotaryEmbedding', [t, rowIds, cos, sin], { interleaved: 0 }, 'com.microsoft');
  };

  // ---- additive mask [B, 1, S, T]: key j visible to query i iff j <= T - S + i and attention_mask[b, j] == 1
  const zero = g.i64([0], []);
  const one = g.i64([1], []);
  const T = g.op1('Gather', [g.op1('Shape', ['attention_mask']), one], { axis: 0 });
  const S = g.op1('Gather', [g.op1('Shape', ['input_ids']), one], { axis: 0 });
  const kidx = g.op1('Unsqueeze', [g.op1('Range', [zero, T, one]), shape([0])]);
  const qidx = g.op1('Unsqueeze', [g.op1('Range', [g.op1('Sub', [T, S]), T, one]), shape([1])]);
  const causal = g.op1('LessOrEqual', [kidx, qidx]);
  const padOk = g.op1('Unsqueeze', [g.op1('Cast', ['attention_mask'], { to: TensorType.BOOL }), shape([1, 2])]);
  const visible = g.op1('And', [causal, padOk]);
  const mask = g.op1('Where', [visible, scalar(0), scalar(FLT_LOWEST)]);
  // Sliding layers also hide keys `window` or more positions behind the query.
  const window = spec.gemma?.sliding.some(Boolean) ? spec.gemma.slidingWindow : undefined;
  const slidingMask =
    window === undefined
      ? undefined
      : g.op1('Where', [
          g.op1('And', [visible, g.op1('Less', [g.op1('Sub', [qidx, kidx]), g.i64([window], [])])]),
          scalar(0),
          scalar(FLT_LOWEST),
        ]);

  const rmsnorm = (t: string, weight: string) => {
    const variance = g.op1('ReduceMean', [g.op1('Pow', [t, scalar(2)])], { axes: [-1], keepdims: 1 });
    const inv = g.op1('Div', [scalar(1), g.op1('Sqrt', [g.op1('Add', [variance, scalar(spec.rmsEps)])])]);
    return g.op1('Mul', [weight, g.op1('Mul', [t, inv])]);
  };

  // llama.cpp's converter interleaves the two rotary halves of each Q/K head for the llama architecture.
  const permuted = spec.architecture === 'llama' || spec.architecture === 'mistral';
  const qPerm = permuted ? rotaryUnpermutation(H, hd) : undefined;
  const kPerm = permuted ? rotaryUnpermutation(KV, hd) : undefined;
  const rep = H / KV;
  const scale = scalar(1 / Math.sqrt(spec.gemma?.queryPreAttnScalar ?? hd));
  const geluTanh = (t: string) => {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const inner = g.op1('Mul', [g.op1('Add', [t, g.op1('Mul', [g.op1('Mul', [g.op1('Mul', [t, t]), t]), scalar(0.044715)])]), scalar(Math.sqrt(2 / Math.PI))]);
    return g.op1('Mul', [g.op1('Mul', [t, scalar(0.5)]), g.op1('Add', [g.op1('Tanh', [inner]), scalar(1)])]);
  };
  /** Gemma's extra norm on a sublayer's output before the residual add. */
  const postNorm = (t: string, l: number, gguf: string, hf: string) => {
    const w = byName.get(`blk.${l}.${gguf}.weight`);
    return w ? rmsnorm(t, vector(`model.layers.${l}.${hf}.weight`, w)) : t;
  };

  /**
   * q, k and v of layer `l` from the normed input `h`: one packed MatMulNBits when their block forms
   * agree (see `packedLinear`), else one linear each; then biases (one Add on the packed output) and
   * qwen3's per-head norms.
   */
  const attentionProjections = (h: string, l: number): string[] => {
    const hf = `model.layers.${l}.self_attn`;
    const parts = (['q', 'k', 'v'] as const).map((part) => ({
      part,
      name: `${hf}.${part}_proj`,
      t: need(`blk.${l}.attn_${part}.weight`),
      perm: part === 'q' ? qPerm : part === 'k' ? kPerm : undefined,
      bias: byName.get(`blk.${l}.attn_${part}.bias`),
    }));
    const biasOf = (p: (typeof parts)[number]) => {
      if (!p.bias) return new Float32Array(p.t.dims[1]);
      const b = floats(p.bias);
      return p.perm ? permuteRows(b, 1, p.perm) : b;
    };
    const biases = parts.some((p) => p.bias) ? parts.map(biasOf) : undefined;
    const packed = packedLinear(h, `${hf}.qkv_proj`, parts, biases && concatFloats(biases));
    const outs =
      packed ??
      parts.map((p, i) => {
        const y = linear(h, `${p.name}.weight`, p.t, p.perm);
        return p.bias ? g.op1('Add', [y, g.f32(`${p.name}.bias`, biases![i])]) : y;
      });
    return outs.map((y, i) => {
      // qwen3: RMSNorm over each head before rotary, back to [B, S, heads * hd] for the head split.
      const part = parts[i].part;
      const norm = byName.get(`blk.${l}.attn_${part}_norm.weight`);
      if (!norm || part === 'v') return y;
      const heads = part === 'q' ? H : KV;
      const perHead = g.op1('Reshape', [y, shape([0, 0, heads, hd])]);
      return g.op1('Reshape', [rmsnorm(perHead, vector(`${hf}.${part}_norm.weight`, norm)), shape([0, 0, heads * hd])]);
    });
  };

  for (let l = 0; l < L; l++) {
    const hf = `model.layers.${l}`;
    const h = rmsnorm(x, vector(`${hf}.input_layernorm.weight`, need(`blk.${l}.attn_norm.weight`)));
    const sliding = spec.gemma?.sliding[l] ?? false;
    const theta = sliding ? spec.gemma!.localRopeTheta : spec.ropeTheta;
    const [qProj, kProj, vProj] = attentionProjections(h, l);
    const q = rope(g.op1('Transpose', [g.op1('Reshape', [qProj, shape([0, 0, H, hd])])], { perm: [0, 2, 1, 3] }), theta);
    const k = rope(g.op1('Transpose', [g.op1('Reshape', [kProj, shape([0, 0, KV, hd])])], { perm: [0, 2, 1, 3] }), theta);
    const v = g.op1('Transpose', [g.op1('Reshape', [vProj, shape([0, 0, KV, hd])])], { perm: [0, 2, 1, 3] });
    const pk = g.op('Concat', [`past_key_values.${l}.key`, k], { axis: 2 }, { outputs: [`present.${l}.key`] })[0];
    const pv = g.op('Concat', [`past_key_values.${l}.value`, v], { axis: 2 }, { outputs: [`present.${l}.value`] })[0];
    // Grouped attention: the `rep` query heads that share a KV head are stacked as rows of one
    // matmul against that KV head ([B, KV, rep * S, hd]), instead of expanding K/V to H heads.
    // No copy of the cache per step, and never a one-row MatMul: onnxruntime computes a
    // one-row product in another order than a row of a larger one, so with one row per head a
    // decode step's scores differ in the last bits from the same position in a multi-token step
    // (int8 activations amplify that; see ARCHITECTURE "Row-invariant steps").
    // [B, H, S, last] <-> [B, KV, rep * S, last] (a last of 0 keeps the input's).
    const grouped = (t: string, last: number) => (rep > 1 ? g.op1('Reshape', [t, shape([0, KV, -1, last])]) : t);
    const perHead = (t: string, last: number) => (rep > 1 ? g.op1('Reshape', [t, shape([0, H, -1, last])]) : t);
    const scores = perHead(g.op1('Mul', [g.op1('MatMul', [grouped(q, hd), g.op1('Transpose', [pk], { perm: [0, 1, 3, 2] })]), scale]), 0);
    const probs = g.op1('Softmax', [g.op1('Add', [scores, sliding && slidingMask ? slidingMask : mask])], { axis: -1 });
    const mixed = perHead(g.op1('MatMul', [grouped(probs, 0), pv]), hd);
    const o = g.op1('Reshape', [g.op1('Transpose', [mixed], { perm: [0, 2, 1, 3] }), shape([0, 0, H * hd])]);
    const attnOut = linear(o, `${hf}.self_attn.o_proj.weight`, need(`blk.${l}.attn_output.weight`));
    x = g.op1('Add', [x, postNorm(attnOut, l, 'post_attention_norm', 'post_attention_layernorm')]);
    // HF names: llama's ffn norm is "post_attention_layernorm", Gemma's "pre_feedforward_layernorm".
    const h2 = rmsnorm(x, vector(`${hf}.${spec.gemma ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}.weight`, need(`blk.${l}.ffn_norm.weight`)));
    const gateUp = [
      { name: `${hf}.mlp.gate_proj`, t: need(`blk.${l}.ffn_gate.weight`) },
      { name: `${hf}.mlp.up_proj`, t: need(`blk.${l}.ffn_up.weight`) },
    ];
    const [gate, up] = packedLinear(h2, `${hf}.mlp.gate_up_proj`, gateUp) ?? gateUp.map((p) => linear(h2, `${p.name}.weight`, p.t));
    const act = g.op1('Mul', [spec.gemma ? geluTanh(gate) : g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]), up]);
    const ffnOut = linear(act, `${hf}.mlp.down_proj.weight`, need(`blk.${l}.ffn_down.weight`));
    x = g.op1('Add', [x, postNorm(ffnOut, l, 'post_ffw_norm', 'post_feedforward_layernorm')]);
  }

  const normed = rmsnorm(x, vector('model.norm.weight', need('output_norm.weight')));
  const h = g.op1('Slice', [normed, g.op1('Neg', [LOGITS_TO_KEEP]), shape([2 ** 31]), shape([1])]);
  const head = byName.get('output.weight');
  let logits: string;
  if (head) logits = linear(h, 'lm_head.weight', head);
  else if (embedQuant) logits = matMulNBits(h, embedQuant.bq, embedQuant);
  else logits = g.op1('MatMul', [h, g.op1('Transpose', ['model.embed_tokens.weight'], { perm: [1, 0] })]);
  const cap = spec.gemma?.finalLogitSoftcap;
  if (cap) logits = g.op1('Mul', [g.op1('Tanh', [g.op1('Mul', [logits, scalar(1 / cap)])]), scalar(cap)]);
  g.op('Identity', [logits], {}, { outputs: ['logits'] });

  for (const t of tensors) if (!used.has(t.name)) note('unused by the graph', t.name);
  return { model: g.finish(`edgellm_gguf_${spec.architecture}`, 17), mapping, weightBytes: g.weightBytes };
}

/** The graph input saying how many of the last positions get logits (1 unless every position's logits are wanted). */
export const LOGITS_TO_KEEP = 'logits_to_keep';

/** Builds the model with its external data in memory (tests, the web adapter). */
export function buildDecoderInMemory(
  spec: DecoderSpec,
  tensors: readonly SourceTensor[],
  codec: WeightCodec,
  options?: DecoderBuildOptions,
): DecoderBuildResult & { data: Uint8Array; dataName: string } {
  const sink = new MemorySink();
  const result = buildDecoderGraph(spec, tensors, codec, sink, options);
  return { ...result, data: sink.bytes(), dataName: sink.location };
}

/**
 * HF row of each GGUF row position: llama.cpp stores head rows as (half, pair) interleaved,
 * `w.reshape(heads, 2, hd/2, in).swapaxes(1, 2)` of HF's rotate-half layout. Returns, for each
 * HF row, the GGUF row it comes from.
 */
export function rotaryUnpermutation(heads: number, hd: number): Int32Array {
  const half = hd / 2;
  const perm = new Int32Array(heads * hd);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) for (let i = 0; i < half; i++) perm[h * hd + j * half + i] = h * hd + 2 * i + j;
  }
  return perm;
}

function permuteRows<T extends Float32Array | Uint8Array>(data: T, rowLength: number, perm: Int32Array): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let r = 0; r < perm.length; r++) out.set(data.subarray(perm[r] * rowLength, (perm[r] + 1) * rowLength), r * rowLength);
  return out;
}

function permuteBlockQuant(bq: BlockQuant, perm: Int32Array): BlockQuant {
  const nb = bq.cols / bq.blockSize;
  return {
    ...bq,
    q: permuteRows(bq.q, bq.cols, perm),
    scales: permuteRows(bq.scales, nb, perm),
    offsets: bq.offsets && permuteRows(bq.offsets, nb, perm),
  };
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/** [rows, cols] -> [cols, rows] */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}
