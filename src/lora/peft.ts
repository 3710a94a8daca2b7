/**
 * PEFT LoRA adapters (`adapter_config.json` + `adapter_model.safetensors`): for each adapted
 * linear layer its low-rank pair A [r, in], B [out, r] and scale, so that the adapted weight is
 * `W + scale * B @ A` (in the [out, in] layout of torch's Linear). The scale is `lora_alpha / r`,
 * or `lora_alpha / sqrt(r)` with rank-stabilized LoRA, with per-module `rank_pattern` and
 * `alpha_pattern` overrides as PEFT applies them.
 * @module
 */
import { readSafetensors, tensorToFloat32 } from './safetensors.js';

export interface LoraPair {
  /** The adapted module without PEFT's wrapper prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** [rank, inFeatures], row-major. */
  a: Float32Array;
  /** [outFeatures, rank], row-major. */
  b: Float32Array;
  scale: number;
}

export interface LoraAdapter {
  /** Adapted modules by name (see `LoraPair.module`). */
  pairs: Map<string, LoraPair>;
  /** The base model the adapter was trained on, as its config names it. */
  baseModel?: string;
  /** Tensors that are not LoRA halves (e.g. `modules_to_save` full copies): a merge must refuse them. */
  otherTensors: string[];
}

interface AdapterConfig {
  peft_type?: string;
  r?: number;
  lora_alpha?: number;
  use_rslora?: boolean;
  fan_in_fan_out?: boolean;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  use_dora?: boolean;
  base_model_name_or_path?: string;
}

/** PEFT's pattern lookup: a key matches a module whose name is the key or ends with `.key` (keys are regexes). */
function patternValue(patterns: Record<string, number> | undefined, module: string): number | undefined {
  for (const [key, value] of Object.entries(patterns ?? {})) if (new RegExp(`(^|\\.)${key}$`).test(module)) return value;
  return undefined;
}

const PAIR = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/;

export function readPeftAdapter(configJson: object, safetensors: Uint8Array, name = 'adapter'): LoraAdapter {
  const config = configJson as AdapterConfig;
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') throw new Error(`${name}: peft_type ${config.peft_type} is not supported (only LORA).`);
  if (config.use_dora) throw new Error(`${name}: DoRA adapters (use_dora) are not supported.`);
  if (!config.r || !config.lora_alpha) throw new Error(`${name}: adapter_config.json needs r and lora_alpha.`);
  const file = readSafetensors(safetensors, `${name}/adapter_model.safetensors`);
  const halves = new Map<string, { a?: Float32Array; b?: Float32Array; aShape?: number[]; bShape?: number[] }>();
  const otherTensors: string[] = [];
  for (const [key, tensor] of file.tensors) {
    const match = PAIR.exec(key);
    if (!match) {
      if (/lora_(embedding_)?[AB]|lora_magnitude/.test(key)) throw new Error(`${name}: ${key} is a kind of LoRA weight this server does not support.`);
      otherTensors.push(key); // e.g. modules_to_save copies
      continue;
    }
    const entry = halves.get(match[1]) ?? {};
    if (match[2] === 'A') Object.assign(entry, { a: tensorToFloat32(tensor), aShape: tensor.shape });
    else Object.assign(entry, { b: tensorToFloat32(tensor), bShape: tensor.shape });
    halves.set(match[1], entry);
  }
  if (halves.size === 0) throw new Error(`${name}: no lora_A / lora_B weights found in adapter_model.safetensors.`);
  const pairs = new Map<string, LoraPair>();
  for (const [module, { a, b, aShape, bShape }] of halves) {
    if (!a || !b || !aShape || !bShape) throw new Error(`${name}: ${module} has only one of lora_A and lora_B.`);
    let [rank, inFeatures] = aShape;
    let [outFeatures, rankB] = bShape;
    let A = a;
    let B = b;
    if (config.fan_in_fan_out) {
      // Conv1D-style layers keep weights as [in, out]: the pair is stored transposed.
      [inFeatures, rank] = aShape;
      [rankB, outFeatures] = bShape;
      A = transpose(a, inFeatures, rank);
      B = transpose(b, rankB, outFeatures);
    }
    if (rank !== rankB) throw new Error(`${name}: ${module} has lora_A of rank ${rank} but lora_B of rank ${rankB}.`);
    const r = patternValue(config.rank_pattern, module) ?? config.r;
    const alpha = patternValue(config.alpha_pattern, module) ?? config.lora_alpha;
    if (r !== rank) throw new Error(`${name}: ${module} has rank ${rank}, but the config says ${r}.`);
    const scale = config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
    pairs.set(module, { module, rank, inFeatures, outFeatures, a: A, b: B, scale });
  }
  return { pairs, otherTensors, ...(config.base_model_name_or_path && { baseModel: config.base_model_name_or_path }) };
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}

/**
 * Adds `scale * B @ A` to a weight in place, in float32 (the exact merge). `layout` says how the
 * weight is stored: `out-in` as torch's Linear ([out, in]), `in-out` as an ONNX MatMul's right
 * operand ([in, out]).
 */
export function mergeLoraPair(weight: Float32Array, pair: LoraPair, layout: 'out-in' | 'in-out'): void {
  const { rank, inFeatures, outFeatures, a, b, scale } = pair;
  if (weight.length !== inFeatures * outFeatures) {
    throw new Error(`LoRA ${pair.module}: the base weight has ${weight.length} values, the adapter expects ${outFeatures} x ${inFeatures}.`);
  }
  const row = new Float32Array(inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    row.fill(0);
    for (let k = 0; k < rank; k++) {
      const bk = b[o * rank + k] * scale;
      if (bk === 0) continue;
      const aRow = k * inFeatures;
      for (let i = 0; i < inFeatures; i++) row[i] += bk * a[aRow + i];
    }
    if (layout === 'out-in') for (let i = 0; i < inFeatures; i++) weight[o * inFeatures + i] += row[i];
    else for (let i = 0; i < inFeatures; i++) weight[i * outFeatures + o] += row[i];
  }
}
