/**
 * The run-time LoRA part of the GGUF decoder graph (`--lora-modules`): a graph input
 * `lora_index` (int64 [batch_size], one adapter index per row, 0 = the base model) and, for each
 * adapted projection `y = x @ Wᵀ`, `y + (x @ A[idx]ᵀ) @ (scale * B[idx])ᵀ`, with every adapter's
 * pair stacked in one initializer per half (src/lora/lora-stack.ts) and picked per row by a Gather.
 * One batch can so mix the base and any adapters; the base weights are shared.
 * @module
 */
import type { LoraStack } from '../lora/lora-stack.js';
import { TensorType, type OnnxGraphWriter } from './onnx-graph-writer.js';

/** The graph input naming each batch row's adapter. */
export const LORA_INDEX_INPUT = 'lora_index';

/**
 * How the per-row pair is picked. `gather`: each row's A and B are gathered ([B, in, r] and
 * [B, r, out], copied every step) for two batched MatMuls. `mask`: every adapter's A side by side
 * ([in, N*r]) in one MatMul, the columns of other adapters zeroed per row by a 0/1 mask, then one
 * MatMul with every B stacked ([N*r, out]); nothing is copied per row, the pairs are read once per
 * step, and the work grows with the number of adapters N. `auto` (default): `mask` for a target
 * whose stacked rank N*r is at most MASK_MAX_COLUMNS, else `gather` (ARCHITECTURE.md has the timings).
 */
export type LoraForm = 'gather' | 'mask' | 'auto';

/** Largest N*r the `auto` form computes with the mask (2 adapters of rank 16 and 4 of rank 8 are under it). */
export const MASK_MAX_COLUMNS = 64;

/**
 * Declares `lora_index` and returns the hook the projection builder calls with each projection's
 * input, its GGUF tensor name and its output: the output with the low-rank update added, or the
 * output as it was for a tensor no adapter targets.
 */
export function loraProjectionHook(g: OnnxGraphWriter, stack: LoraStack, form: LoraForm = 'auto'): (x: string, tensor: string, y: string) => string {
  g.input(LORA_INDEX_INPUT, TensorType.INT64, ['batch_size']);
  const n = stack.names.length;
  const masks = new Map<number, string>();
  /** [B, 1, n * rank]: 1 in the columns of the row's adapter, 0 elsewhere (all 0 for the base). */
  const maskOf = (rank: number) => {
    if (!masks.has(rank)) {
      const owner = g.i64(Array.from({ length: n * rank }, (_, c) => 1 + Math.floor(c / rank)), [1, 1, n * rank]);
      const index = g.op1('Unsqueeze', [LORA_INDEX_INPUT, g.i64([1, 2])]); // [B, 1, 1]
      masks.set(rank, g.op1('Cast', [g.op1('Equal', [owner, index])], { to: TensorType.FLOAT }));
    }
    return masks.get(rank)!;
  };
  return (x, tensor, y) => {
    const t = stack.targets.get(tensor);
    if (!t) return y;
    const name = `lora.${tensor.replace(/\.weight$/, '')}`;
    const R = t.rank;
    if (form === 'gather' || (form === 'auto' && n * R > MASK_MAX_COLUMNS)) {
      const a = g.f32(`${name}.lora_A_T`, t.a, [n + 1, t.inFeatures, R]);
      const b = g.f32(`${name}.lora_B_T`, t.b, [n + 1, R, t.outFeatures]);
      // [B, S, in] @ [B, in, r] -> [B, S, r] @ [B, r, out] -> [B, S, out]
      const low = g.op1('MatMul', [x, g.op1('Gather', [a, LORA_INDEX_INPUT], { axis: 0 })]);
      return g.op1('Add', [y, g.op1('MatMul', [low, g.op1('Gather', [b, LORA_INDEX_INPUT], { axis: 0 })])]);
    }
    // Adapters 1..n (the base's zero pair is the all-zero mask): A side by side [in, n*r], B stacked [n*r, out].
    const aCat = new Float32Array(t.inFeatures * n * R);
    for (let k = 0; k < n; k++) {
      for (let c = 0; c < t.inFeatures; c++) aCat.set(t.a.subarray(((k + 1) * t.inFeatures + c) * R, ((k + 1) * t.inFeatures + c + 1) * R), c * n * R + k * R);
    }
    const a = g.f32(`${name}.lora_A_T`, aCat, [t.inFeatures, n * R]);
    const b = g.f32(`${name}.lora_B_T`, t.b.subarray(R * t.outFeatures), [n * R, t.outFeatures]);
    const low = g.op1('Mul', [g.op1('MatMul', [x, a]), maskOf(R)]);
    return g.op1('Add', [y, g.op1('MatMul', [low, b])]);
  };
}
