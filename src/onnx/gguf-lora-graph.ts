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
 * Declares `lora_index` and returns the hook the projection builder calls with each projection's
 * input, its GGUF tensor name and its output: the output with the low-rank update added, or the
 * output as it was for a tensor no adapter targets.
 */
export function loraProjectionHook(g: OnnxGraphWriter, stack: LoraStack, prefix = 'lora'): (x: string, tensor: string, y: string) => string {
  g.input(LORA_INDEX_INPUT, TensorType.INT64, ['batch_size']);
  return (x, tensor, y) => {
    const t = stack.targets.get(tensor);
    if (!t) return y;
    const count = stack.names.length + 1;
    const name = `${prefix}.${tensor.replace(/\.weight$/, '')}`;
    const a = g.f32(`${name}.lora_A_T`, t.a, [count, t.inFeatures, t.rank]);
    const b = g.f32(`${name}.lora_B_T`, t.b, [count, t.rank, t.outFeatures]);
    // [B, S, in] @ [B, in, r] -> [B, S, r] @ [B, r, out] -> [B, S, out]
    const low = g.op1('MatMul', [x, g.op1('Gather', [a, LORA_INDEX_INPUT], { axis: 0 })]);
    const delta = g.op1('MatMul', [low, g.op1('Gather', [b, LORA_INDEX_INPUT], { axis: 0 })]);
    return g.op1('Add', [y, delta]);
  };
}
