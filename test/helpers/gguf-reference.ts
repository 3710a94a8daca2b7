/**
 * Test helpers for the GGUF decoder graph: a plain-loop TypeScript forward pass over GGUF tensors
 * (float64 arithmetic, llama.cpp's conventions: the stored Q/K row order with its rotary mode, so
 * it checks the graph's un-permutation independently), and tiny random decoders of each architecture.
 */
import type { GgmlType } from '../../src/gguf/reader.js';
import { readGguf } from '../../src/gguf/reader.js';
import { dequantize, toBlockQuant } from '../../src/gguf/quants.js';
import type { BlockQuant, DecoderSpec, SourceTensor, WeightCodec } from '../../src/onnx/gguf-decoder-graph.js';
import { byteLevelSymbols } from '../../src/model/token-bytes.js';
import { seeded } from './seeded.js';
import { quantTensor, randomFloats, typed, writeGguf, type WriterTensor, type WriterValue } from './gguf-writer.js';

/**
 * Logits of every position of `ids` ([ids.length][vocab]). Rotary as llama.cpp applies it: for
 * `llama`/`mistral` on adjacent pairs of the stored rows (its "normal" mode, which is why the
 * converter permuted them), for qwen2/qwen3 on the two halves (NEOX mode).
 */
export function referenceLogits(spec: DecoderSpec, tensors: readonly SourceTensor[], codec: WeightCodec, ids: number[]): Float64Array[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const w = (name: string) => {
    const t = byName.get(name);
    if (!t) throw new Error(`no tensor ${name}`);
    return Float64Array.from(codec.dequantize(t));
  };
  const opt = (name: string) => (byName.has(name) ? w(name) : undefined);
  const { hidden: D, layers: L, heads: H, kvHeads: KV, headDim: hd, rmsEps } = spec;
  const S = ids.length;
  const embed = w('token_embd.weight');
  const V = byName.get('token_embd.weight')!.dims[1];
  const adjacent = spec.architecture === 'llama' || spec.architecture === 'mistral';

  // out[s] = W x[s]; W is [rows][cols] row-major (GGUF dims [cols, rows]).
  const matvec = (W: Float64Array, rows: number, cols: number, x: Float64Array) => {
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += W[r * cols + c] * x[c];
      y[r] = sum;
    }
    return y;
  };
  const norm = (x: Float64Array, g: Float64Array, from = 0, n = x.length) => {
    let ss = 0;
    for (let i = from; i < from + n; i++) ss += x[i] * x[i];
    const inv = 1 / Math.sqrt(ss / n + rmsEps);
    for (let i = 0; i < n; i++) x[from + i] = x[from + i] * inv * g[i];
  };
  const gemma = spec.gemma;
  const rope = (x: Float64Array, heads: number, p: number, base: number) => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const theta = p * Math.pow(base, (-2 * i) / hd);
        const [a, b] = adjacent ? [h * hd + 2 * i, h * hd + 2 * i + 1] : [h * hd + i, h * hd + i + hd / 2];
        const x0 = x[a];
        const x1 = x[b];
        x[a] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
        x[b] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
      }
    }
  };

  const xs = ids.map((id) => embed.slice(id * D, (id + 1) * D).map((v) => (gemma ? v * Math.sqrt(D) : v)));
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
  for (let l = 0; l < L; l++) {
    const sliding = gemma?.sliding[l] ?? false;
    const base = sliding ? gemma!.localRopeTheta : spec.ropeTheta;
    const [postAttn, postFfn] = ['post_attention_norm', 'post_ffw_norm'].map((n) => opt(`blk.${l}.${n}.weight`));
    const p = (n: string) => `blk.${l}.${n}`;
    const [wq, wk, wv, wo] = ['attn_q', 'attn_k', 'attn_v', 'attn_output'].map((n) => w(p(`${n}.weight`)));
    const [bq, bk, bv] = ['attn_q', 'attn_k', 'attn_v'].map((n) => opt(p(`${n}.bias`)));
    const [qn, kn] = ['attn_q_norm', 'attn_k_norm'].map((n) => opt(p(`${n}.weight`)));
    const attnNorm = w(p('attn_norm.weight'));
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    for (let s = 0; s < S; s++) {
      const h = xs[s].slice();
      norm(h, attnNorm);
      const q = matvec(wq, H * hd, D, h);
      const k = matvec(wk, KV * hd, D, h);
      const v = matvec(wv, KV * hd, D, h);
      if (bq) q.forEach((_, i) => (q[i] += bq[i]));
      if (bk) k.forEach((_, i) => (k[i] += bk[i]));
      if (bv) v.forEach((_, i) => (v[i] += bv[i]));
      if (qn) for (let hh = 0; hh < H; hh++) norm(q, qn, hh * hd, hd);
      if (kn) for (let hh = 0; hh < KV; hh++) norm(k, kn, hh * hd, hd);
      rope(q, H, s, base);
      rope(k, KV, s, base);
      qs.push(q);
      ks.push(k);
      vs.push(v);
    }
    const ffnNorm = w(p('ffn_norm.weight'));
    const [wg, wu, wd] = ['ffn_gate', 'ffn_up', 'ffn_down'].map((n) => w(p(`${n}.weight`)));
    const F = byName.get(p('ffn_gate.weight'))!.dims[1];
    for (let s = 0; s < S; s++) {
      const att = new Float64Array(H * hd);
      for (let hh = 0; hh < H; hh++) {
        const kvh = Math.floor(hh / (H / KV));
        const scores = new Float64Array(s + 1);
        for (let t = 0; t <= s; t++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qs[s][hh * hd + i] * ks[t][kvh * hd + i];
          scores[t] = sliding && s - t >= gemma!.slidingWindow ? -Infinity : dot / Math.sqrt(gemma?.queryPreAttnScalar ?? hd);
        }
        const max = Math.max(...scores);
        let sum = 0;
        scores.forEach((x, t) => (sum += scores[t] = Math.exp(x - max)));
        for (let t = 0; t <= s; t++) for (let i = 0; i < hd; i++) att[hh * hd + i] += (scores[t] / sum) * vs[t][kvh * hd + i];
      }
      const o = matvec(wo, D, H * hd, att);
      if (postAttn) norm(o, postAttn);
      xs[s] = xs[s].map((x, i) => x + o[i]);
    }
    for (let s = 0; s < S; s++) {
      const h = xs[s].slice();
      norm(h, ffnNorm);
      const gate = matvec(wg, F, D, h);
      const up = matvec(wu, F, D, h);
      const act = gate.map((g, i) => (gemma ? gelu(g) : g / (1 + Math.exp(-g))) * up[i]);
      const down = matvec(wd, D, F, act);
      if (postFfn) norm(down, postFfn);
      xs[s] = xs[s].map((x, i) => x + down[i]);
    }
  }
  const outNorm = w('output_norm.weight');
  const head = opt('output.weight') ?? embed;
  return xs.map((x) => {
    const h = x.slice();
    norm(h, outNorm);
    const logits = matvec(head, V, D, h);
    const cap = gemma?.finalLogitSoftcap;
    return cap ? logits.map((z) => Math.tanh(z / cap) * cap) : logits;
  });
}

/** Deterministic random numbers (mulberry32). */
export const rng = seeded;

export interface TinyModel {
  spec: DecoderSpec;
  tensors: SourceTensor[];
  codec: WeightCodec;
}

/** The weight form a tiny model's tensors take: float32, or block forms as MatMulNBits reads them. */
export type TinyQuant = 'F32' | 'Q4' | 'Q4+offsets' | 'Q8';

/**
 * A tiny random decoder as GGUF tensors. Projections (and the embedding) are random block forms
 * of `quant`, carried as BlockQuant values (the codec dequantizes them with the contract's
 * formula); norms and biases are F32.
 */
export function tinyModel(architecture: DecoderSpec['architecture'], quant: TinyQuant, options: { tied?: boolean; seed?: number } = {}): TinyModel {
  const random = rng(options.seed ?? 7);
  const spec: DecoderSpec = { architecture, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 96, ropeTheta: 10000, rmsEps: 1e-5 };
  const F = 96;
  const forms = new Map<string, BlockQuant>();
  const floats = new Map<string, Float32Array>();
  const tensors: SourceTensor[] = [];
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const add = (name: string, dims: number[], values: Float32Array) => {
    floats.set(name, values);
    tensors.push({ name, type: 'F32', dims, data: new Uint8Array(values.buffer) });
  };
  const vector = (name: string, n: number, around: number, spread: number) =>
    add(name, [n], Float32Array.from({ length: n }, () => around + spread * gauss()));
  const matrix = (name: string, rows: number, cols: number, std: number) => {
    if (quant === 'F32') return add(name, [cols, rows], Float32Array.from({ length: rows * cols }, () => std * gauss()));
    const bits = quant === 'Q8' ? 8 : 4;
    const blockSize = bits === 8 ? 32 : 16;
    const nb = cols / blockSize;
    const levels = 2 ** bits;
    const q = Uint8Array.from({ length: rows * cols }, () => Math.floor(random() * levels));
    const scales = Float32Array.from({ length: rows * nb }, () => (std * (0.8 + 0.4 * random()) * 2) / levels);
    const offsets = quant === 'Q4+offsets' ? Float32Array.from({ length: rows * nb }, () => std * 0.5 * gauss()) : undefined;
    forms.set(name, { bits, blockSize, rows, cols, q, scales, offsets });
    tensors.push({ name, type: quant === 'Q8' ? 'Q8_0' : quant === 'Q4' ? 'Q4_0' : 'Q4_1', dims: [cols, rows], data: new Uint8Array(0) });
  };
  const { hidden: D, heads: H, kvHeads: KV, headDim: hd, vocab: Vn } = spec;
  matrix('token_embd.weight', Vn, D, 1);
  for (let l = 0; l < spec.layers; l++) {
    const p = `blk.${l}.`;
    vector(`${p}attn_norm.weight`, D, 1, 0.1);
    matrix(`${p}attn_q.weight`, H * hd, D, 1 / Math.sqrt(D));
    matrix(`${p}attn_k.weight`, KV * hd, D, 1 / Math.sqrt(D));
    matrix(`${p}attn_v.weight`, KV * hd, D, 1 / Math.sqrt(D));
    if (architecture === 'qwen2') {
      vector(`${p}attn_q.bias`, H * hd, 0, 0.3);
      vector(`${p}attn_k.bias`, KV * hd, 0, 0.3);
      vector(`${p}attn_v.bias`, KV * hd, 0, 0.3);
    }
    if (architecture === 'qwen3') {
      vector(`${p}attn_q_norm.weight`, hd, 1, 0.2);
      vector(`${p}attn_k_norm.weight`, hd, 1, 0.2);
    }
    matrix(`${p}attn_output.weight`, D, H * hd, 1 / Math.sqrt(H * hd));
    vector(`${p}ffn_norm.weight`, D, 1, 0.1);
    matrix(`${p}ffn_gate.weight`, F, D, 1 / Math.sqrt(D));
    matrix(`${p}ffn_up.weight`, F, D, 1 / Math.sqrt(D));
    matrix(`${p}ffn_down.weight`, D, F, 1 / Math.sqrt(F));
  }
  vector('output_norm.weight', D, 1, 0.1);
  if (options.tied === false) matrix('output.weight', Vn, D, 1);
  const codec: WeightCodec = {
    toBlockQuant: (t) => forms.get(t.name),
    dequantize: (t) => {
      const f = floats.get(t.name);
      if (f) return f;
      const bq = forms.get(t.name)!;
      const out = new Float32Array(bq.rows * bq.cols);
      const nb = bq.cols / bq.blockSize;
      for (let r = 0; r < bq.rows; r++) {
        for (let c = 0; c < bq.cols; c++) {
          const b = r * nb + Math.floor(c / bq.blockSize);
          out[r * bq.cols + c] = bq.scales[b] * (bq.q[r * bq.cols + c] - 2 ** (bq.bits - 1)) + (bq.offsets?.[b] ?? 0);
        }
      }
      return out;
    },
  };
  return { spec, tensors, codec };
}

/** Weight types of a tiny GGUF file: `weights` for the projections, optional others for the embedding and ffn_down (as Q4_K_M mixes them). */
export interface TinyGgufTypes {
  weights: GgmlType;
  embedding?: GgmlType;
  down?: GgmlType;
  /** attn_v's type (mixed files such as Q4_K_M keep v in another format than q and k). */
  value?: GgmlType;
  /** ffn_up's type. */
  up?: GgmlType;
}

/**
 * A tiny random decoder written as a real GGUF file with the test writer's quantizers and read
 * back with the reader; the codec is src/gguf/quants.ts. Hidden size 256 so K-quant super-blocks fit.
 */
export function tinyGguf(
  architecture: DecoderSpec['architecture'],
  types: TinyGgufTypes,
  options: {
    tied?: boolean;
    seed?: number;
    /** Write the model and a byte-level tokenizer's metadata too (vocab 257). */
    metadata?: boolean;
    /** More metadata (a chat template, say). */
    extraMetadata?: Record<string, WriterValue>;
    /** general.alignment of the tensor data (default the writer's 32): a large one pads the file. */
    alignment?: number;
  } = {},
): TinyModel & { bytes: Uint8Array } {
  const spec: DecoderSpec = { architecture, hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64, vocab: options.metadata ? 257 : 96, ropeTheta: 10000, rmsEps: 1e-5 };
  if (architecture === 'gemma3') {
    // Layer 0 slides over 4 positions (the tests run 9 tokens), layer 1 is global.
    spec.ropeTheta = 1e6;
    spec.gemma = { sliding: [true, false], slidingWindow: 4, localRopeTheta: 10000, queryPreAttnScalar: 64, finalLogitSoftcap: 30 };
  }
  const F = 256;
  let seed = options.seed ?? 11;
  const tensors: WriterTensor[] = [];
  const uniform = (n: number, std: number) => randomFloats(n, seed++, std * Math.sqrt(3));
  const vector = (name: string, n: number, around: number, spread: number) =>
    tensors.push(quantTensor(name, 'F32', [n], uniform(n, spread).map((x) => x + around)));
  const matrix = (name: string, type: GgmlType, rows: number, cols: number, std: number) => tensors.push(quantTensor(name, type, [cols, rows], uniform(rows * cols, std)));
  const { hidden: D, heads: H, kvHeads: KV, headDim: hd, vocab: Vn } = spec;
  const w = types.weights;
  matrix('token_embd.weight', types.embedding ?? w, Vn, D, 1);
  for (let l = 0; l < spec.layers; l++) {
    const p = `blk.${l}.`;
    vector(`${p}attn_norm.weight`, D, 1, 0.1);
    matrix(`${p}attn_q.weight`, w, H * hd, D, 1 / Math.sqrt(D));
    matrix(`${p}attn_k.weight`, w, KV * hd, D, 1 / Math.sqrt(D));
    matrix(`${p}attn_v.weight`, types.value ?? w, KV * hd, D, 1 / Math.sqrt(D));
    if (architecture === 'qwen2') for (const [n, rows] of [['q', H * hd], ['k', KV * hd], ['v', KV * hd]] as const) vector(`${p}attn_${n}.bias`, rows, 0, 0.3);
    if (architecture === 'qwen3' || architecture === 'gemma3') for (const n of ['q', 'k']) vector(`${p}attn_${n}_norm.weight`, hd, 1, 0.2);
    if (architecture === 'gemma3') for (const n of ['post_attention_norm', 'post_ffw_norm']) vector(`${p}${n}.weight`, D, 1, 0.1);
    matrix(`${p}attn_output.weight`, w, D, H * hd, 1 / Math.sqrt(H * hd));
    vector(`${p}ffn_norm.weight`, D, 1, 0.1);
    matrix(`${p}ffn_gate.weight`, w, F, D, 1 / Math.sqrt(D));
    matrix(`${p}ffn_up.weight`, types.up ?? w, F, D, 1 / Math.sqrt(D));
    matrix(`${p}ffn_down.weight`, types.down ?? w, D, F, 1 / Math.sqrt(F));
  }
  vector('output_norm.weight', D, 1, 0.1);
  if (options.tied === false) matrix('output.weight', w, Vn, D, 1);
  const bytes = writeGguf(
    { 'general.architecture': architecture, ...(options.metadata ? modelMetadata(spec, F) : {}), ...options.extraMetadata },
    tensors,
    options.alignment ? { alignment: options.alignment } : {},
  );
  const file = readGguf(bytes);
  return { spec, tensors: file.tensors, codec: { dequantize, toBlockQuant }, bytes };
}

/** Config metadata of `spec` (llama-style keys) and a byte-level BPE tokenizer: <|end|> (eos) and the 256 byte symbols. */
function modelMetadata(spec: DecoderSpec, ffn: number): Record<string, WriterValue> {
  const a = spec.architecture;
  const bytes = byteLevelSymbols();
  const tokens = ['<|end|>', ...bytes];
  return {
    [`${a}.embedding_length`]: spec.hidden,
    [`${a}.block_count`]: spec.layers,
    [`${a}.attention.head_count`]: spec.heads,
    [`${a}.attention.head_count_kv`]: spec.kvHeads,
    [`${a}.feed_forward_length`]: ffn,
    [`${a}.context_length`]: 512,
    [`${a}.rope.freq_base`]: spec.ropeTheta,
    [`${a}.attention.layer_norm_rms_epsilon`]: spec.rmsEps,
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': 'default',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': typed('ARRAY', tokens.map((_, i) => (i === 0 ? 3 : 1)), 'INT32'),
    'tokenizer.ggml.merges': [],
    'tokenizer.ggml.eos_token_id': 0,
  };
}
