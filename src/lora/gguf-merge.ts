/**
 * LoRA adapters merged into a GGUF base before its ONNX graph is built: each targeted GGUF tensor
 * is dequantized, `scale * B @ A` is added in float32 (the exact merge), and the builder gets an
 * F32 tensor in its place. Adapters come from PEFT (HF module names, HF row order) or from
 * llama.cpp's `convert_lora_to_gguf` (GGUF names, rows already in the GGUF's order).
 *
 * llama.cpp stores the Q and K rows of llama/mistral models permuted for its rotary mode; a PEFT
 * delta is in HF row order, so its B rows are moved to the GGUF positions before the merge (the
 * graph builder un-permutes the merged tensor as it does any Q/K weight). A GGUF LoRA's B was
 * permuted by its converter already.
 * @module
 */
import type { GgufFile, GgufTensor } from '../gguf/reader.js';
import { metaOptionalNumber, metaString } from '../gguf/reader.js';
import { rotaryUnpermutation, type DecoderSpec, type SourceTensor } from '../onnx/gguf-decoder-graph.js';
import { mergeLoraPair, readPeftAdapter, type LoraAdapter, type LoraPair } from './peft.js';

/** One adapted GGUF tensor. */
export interface GgufLoraTarget {
  /** The GGUF tensor, e.g. `blk.0.attn_q.weight`. */
  tensor: string;
  pair: LoraPair;
  /** `hf`: B's rows in HF order (PEFT); `gguf`: in the GGUF file's order (a GGUF LoRA). */
  rowOrder: 'hf' | 'gguf';
}

export interface GgufLora {
  /** For messages: the adapter's directory or file. */
  name: string;
  targets: GgufLoraTarget[];
  /** A GGUF LoRA's `general.architecture`, checked against the base. */
  architecture?: string;
}

const HF_TO_GGUF: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^(?:model\.)?layers\.(\d+)\.self_attn\.([qkv])_proj$/, (m) => `blk.${m[1]}.attn_${m[2]}.weight`],
  [/^(?:model\.)?layers\.(\d+)\.self_attn\.o_proj$/, (m) => `blk.${m[1]}.attn_output.weight`],
  [/^(?:model\.)?layers\.(\d+)\.mlp\.(gate|up|down)_proj$/, (m) => `blk.${m[1]}.ffn_${m[2]}.weight`],
  [/^lm_head$/, () => 'output.weight'],
];

/** The GGUF tensor an HF module's weight is stored as, or undefined for modules this server cannot adapt. */
export function ggufTensorOf(module: string): string | undefined {
  for (const [pattern, name] of HF_TO_GGUF) {
    const m = pattern.exec(module);
    if (m) return name(m);
  }
  return undefined;
}

/**
 * A PEFT adapter from its two files' contents (adapter_config.json's text, adapter_model.safetensors'
 * bytes), keyed by GGUF tensor; `what` names it in errors (a flag on Node, `LoRA <name>` on the web).
 */
export function peftFilesToGguf(configText: string, safetensors: Uint8Array, name: string, what: string): GgufLora {
  let config: object;
  try {
    config = JSON.parse(configText);
  } catch (error) {
    throw new Error(`${what}: adapter_config.json is not valid JSON (${(error as Error).message}).`);
  }
  return peftToGguf(readPeftAdapter(config, safetensors, name), name);
}

/** A PEFT adapter's pairs keyed by GGUF tensor; refuses embedding and unknown modules by name. */
export function peftToGguf(adapter: LoraAdapter, name: string): GgufLora {
  if (adapter.otherTensors.length) {
    const list = adapter.otherTensors.slice(0, 3).join(', ') + (adapter.otherTensors.length > 3 ? ', ...' : '');
    throw new Error(`LoRA ${name}: the adapter also holds full weights (${list}; PEFT's modules_to_save), which this server does not load; only lora_A / lora_B pairs can be merged.`);
  }
  const targets: GgufLoraTarget[] = [];
  for (const pair of adapter.pairs.values()) {
    if (/(^|\.)(embed_tokens|wte|word_embeddings)$/.test(pair.module)) {
      throw new Error(`LoRA ${name}: ${pair.module} adapts the token embedding, which cannot be merged (only the attention and MLP projections and an untied lm_head can).`);
    }
    const tensor = ggufTensorOf(pair.module);
    if (!tensor) {
      throw new Error(`LoRA ${name}: module ${pair.module} is not one this server can merge (q/k/v/o_proj, gate/up/down_proj of model.layers.N, lm_head).`);
    }
    targets.push({ tensor, pair, rowOrder: 'hf' });
  }
  return { name, targets };
}

/**
 * A LoRA in llama.cpp's GGUF form: `general.type = adapter`, `adapter.type = lora`,
 * `adapter.lora.alpha`, tensor pairs `<base tensor>.lora_a` (ggml dims [in, r]) and `.lora_b`
 * ([r, out]). The scale is alpha / r as llama.cpp applies it (1 when alpha is 0 or absent).
 */
export function readGgufLora(file: GgufFile, name: string, dequantize: (t: GgufTensor) => Float32Array): GgufLora {
  const type = metaString(file, 'general.type');
  if (type !== 'adapter') throw new Error(`LoRA ${name}: this GGUF file is ${type ? `of general.type "${type}"` : 'not marked general.type = adapter'}, not a LoRA adapter.`);
  const adapterType = metaString(file, 'adapter.type');
  if (adapterType !== 'lora') throw new Error(`LoRA ${name}: adapter.type is "${adapterType}"; only "lora" adapters are supported.`);
  const alpha = metaOptionalNumber(file, 'adapter.lora.alpha') ?? 0;
  const halves = new Map<string, { a?: GgufTensor; b?: GgufTensor }>();
  for (const t of file.tensors) {
    const m = /^(.+)\.lora_([ab])$/.exec(t.name);
    if (!m) throw new Error(`LoRA ${name}: tensor ${t.name} is not a lora_a / lora_b half.`);
    if (!t.supported) throw new Error(`LoRA ${name}: tensor ${t.name} has type ${t.type}, which cannot be read.`);
    halves.set(m[1], { ...halves.get(m[1]), [m[2]]: t });
  }
  if (halves.size === 0) throw new Error(`LoRA ${name}: the GGUF file holds no lora_a / lora_b tensors.`);
  const targets: GgufLoraTarget[] = [];
  for (const [tensor, { a, b }] of halves) {
    if (!a || !b) throw new Error(`LoRA ${name}: ${tensor} has only one of lora_a and lora_b.`);
    if (tensor === 'token_embd.weight') throw new Error(`LoRA ${name}: ${tensor} adapts the token embedding, which cannot be merged.`);
    const [inFeatures, rank] = a.dims;
    const [rankB, outFeatures] = b.dims;
    if (a.dims.length !== 2 || b.dims.length !== 2 || rank !== rankB) {
      throw new Error(`LoRA ${name}: ${tensor} has lora_a [${a.dims}] and lora_b [${b.dims}] (ggml order), expected [in, r] and [r, out].`);
    }
    const pair: LoraPair = {
      module: tensor, rank, inFeatures, outFeatures, a: dequantize(a).slice(), b: dequantize(b).slice(), scale: alpha ? alpha / rank : 1,
    };
    targets.push({ tensor, pair, rowOrder: 'gguf' });
  }
  return { name, targets, architecture: metaString(file, 'general.architecture') };
}

export interface LoraMergeResult<T extends SourceTensor> {
  /** The base tensors with each target replaced by its merged F32 tensor. */
  tensors: T[];
  /** For the startup log: what was merged. */
  lines: string[];
}

/**
 * Merges `lora` into the base `tensors` (see the module comment). Refuses a target the base does
 * not have (an lm_head on a tied head included) or whose shape differs.
 */
export function mergeGgufLora<T extends SourceTensor>(
  spec: DecoderSpec,
  tensors: readonly T[],
  lora: GgufLora,
  dequantize: (t: T) => Float32Array,
): LoraMergeResult<T> {
  const family = (arch: string) => (arch === 'mistral' ? 'llama' : arch);
  if (lora.architecture && family(lora.architecture) !== family(spec.architecture)) {
    throw new Error(`LoRA ${lora.name} is for architecture "${lora.architecture}", the base model is "${spec.architecture}".`);
  }
  const index = new Map(tensors.map((t, i) => [t.name, i]));
  const out = [...tensors];
  const permuted = spec.architecture === 'llama' || spec.architecture === 'mistral';
  const seen = new Set<string>();
  const zero: string[] = [];
  for (const { tensor, pair, rowOrder } of lora.targets) {
    if (seen.has(tensor)) throw new Error(`LoRA ${lora.name}: ${tensor} is adapted twice.`);
    seen.add(tensor);
    const i = index.get(tensor);
    if (i === undefined) {
      if (tensor === 'output.weight') {
        throw new Error(`LoRA ${lora.name}: it adapts lm_head, but the base model's head is tied to the token embedding; merging would change the embedding too.`);
      }
      throw new Error(`LoRA ${lora.name}: the base model has no tensor ${tensor} (for ${pair.module}).`);
    }
    const base = tensors[i];
    const [cols, rows] = base.dims;
    if (pair.inFeatures !== cols || pair.outFeatures !== rows) {
      throw new Error(`LoRA ${lora.name}: ${pair.module} is ${pair.outFeatures} x ${pair.inFeatures}, the base tensor ${tensor} is ${rows} x ${cols}.`);
    }
    // A zero delta (PEFT initializes B to zeros) leaves the tensor as it is, in its exact form.
    if (pair.scale === 0 || pair.b.every((v) => v === 0) || pair.a.every((v) => v === 0)) {
      zero.push(tensor);
      continue;
    }
    const weight = dequantize(base).slice();
    const rotary = /^blk\.\d+\.attn_([qk])\.weight$/.exec(tensor);
    const b = permuted && rowOrder === 'hf' && rotary ? toGgufRows(pair.b, pair.rank, rotaryUnpermutation(rotary[1] === 'q' ? spec.heads : spec.kvHeads, spec.headDim)) : pair.b;
    mergeLoraPair(weight, { ...pair, b }, 'out-in');
    out[i] = { ...base, type: 'F32', data: new Uint8Array(weight.buffer), ...('supported' in base ? { supported: true } : {}) };
  }
  const scales = [...new Set(lora.targets.map((t) => `rank ${t.pair.rank}, scale ${+t.pair.scale.toPrecision(6)}`))];
  const names = lora.targets.map((t) => t.tensor).filter((n) => !zero.includes(n));
  const list = (n: string[]) => (n.length <= 4 ? n.join(', ') : `${n.slice(0, 3).join(', ')}, ... ${n[n.length - 1]}`);
  const lines = [`LoRA ${lora.name}: merged in float32 into ${names.length} tensor${names.length === 1 ? '' : 's'} (${scales.join('; ')})${names.length ? `: ${list(names)}` : ''}`];
  if (zero.length) lines.push(`LoRA ${lora.name}: ${zero.length} zero update${zero.length === 1 ? '' : 's'} left unmerged (the base weights as they are): ${list(zero)}`);
  return { tensors: out, lines };
}

/** B's rows [out, r] moved from HF order to GGUF order: `perm[hfRow]` is the GGUF row. */
function toGgufRows(b: Float32Array, rank: number, perm: Int32Array): Float32Array {
  const out = new Float32Array(b.length);
  for (let r = 0; r < perm.length; r++) out.set(b.subarray(r * rank, (r + 1) * rank), perm[r] * rank);
  return out;
}
