/**
 * Several LoRA adapters served at run time from one GGUF base (`--lora-modules`): for each GGUF
 * tensor that any adapter targets, every adapter's pair stacked along a leading adapter axis, so
 * the graph can pick one pair per batch row with a Gather on the row's adapter index.
 *
 * Layout per target (what the graph's low-rank MatMuls read, rank padded with zeros to the
 * largest rank among the adapters that target it):
 * - `a`: [adapters + 1, in, rank] = Aᵀ of each adapter,
 * - `b`: [adapters + 1, rank, out] = (scale * B)ᵀ, its output rows in HF order (the order of the
 *   graph's projection outputs: the builder un-permutes the base's Q/K rows).
 * Index 0 is the base model: all zeros. An adapter that does not target a tensor is zeros there.
 * Zeros are exact: `y + x @ 0 @ 0` is `y`, and padded rank columns add `0` to each sum.
 *
 * The scale is folded into B as the merge folds it (`scale * b` rounded once to float32), so a
 * run-time adapter and the same adapter merged differ only by where float32 sums round.
 * @module
 */
import { rotaryUnpermutation, type DecoderSpec, type SourceTensor } from '../onnx/gguf-decoder-graph.js';
import type { GgufLora } from './gguf-merge.js';

/** One adapted GGUF tensor, all adapters stacked (see the module comment). */
export interface LoraStackTarget {
  /** The base GGUF tensor, e.g. `blk.0.attn_q.weight`. */
  tensor: string;
  inFeatures: number;
  outFeatures: number;
  /** The padded rank. */
  rank: number;
  /** [adapters + 1, in, rank] */
  a: Float32Array;
  /** [adapters + 1, rank, out] */
  b: Float32Array;
}

export interface LoraStack {
  /** Adapter names in index order (index 0, the base, is not listed: `names[i]` has index i + 1). */
  names: string[];
  targets: Map<string, LoraStackTarget>;
  /** For the startup log. */
  lines: string[];
}

/**
 * Stacks `adapters` over the base `tensors` (which must hold every target with the pair's shape).
 * Refuses what the merge refuses: another architecture, a target the base lacks (an lm_head on a
 * tied head included), a shape mismatch, a tensor adapted twice by one adapter.
 */
export function stackLoras(spec: DecoderSpec, tensors: readonly SourceTensor[], adapters: readonly GgufLora[]): LoraStack {
  const family = (arch: string) => (arch === 'mistral' ? 'llama' : arch);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const permuted = spec.architecture === 'llama' || spec.architecture === 'mistral';
  const count = adapters.length + 1;
  // First pass: validate, and find each target's padded rank.
  const ranks = new Map<string, number>();
  for (const lora of adapters) {
    if (lora.architecture && family(lora.architecture) !== family(spec.architecture)) {
      throw new Error(`LoRA ${lora.name} is for architecture "${lora.architecture}", the base model is "${spec.architecture}".`);
    }
    const seen = new Set<string>();
    for (const { tensor, pair } of lora.targets) {
      if (seen.has(tensor)) throw new Error(`LoRA ${lora.name}: ${tensor} is adapted twice.`);
      seen.add(tensor);
      const base = byName.get(tensor);
      if (!base) {
        if (tensor === 'output.weight') {
          throw new Error(`LoRA ${lora.name}: it adapts lm_head, but the base model's head is tied to the token embedding, which a LoRA cannot adapt.`);
        }
        throw new Error(`LoRA ${lora.name}: the base model has no tensor ${tensor} (for ${pair.module}).`);
      }
      const [cols, rows] = base.dims;
      if (pair.inFeatures !== cols || pair.outFeatures !== rows) {
        throw new Error(`LoRA ${lora.name}: ${pair.module} is ${pair.outFeatures} x ${pair.inFeatures}, the base tensor ${tensor} is ${rows} x ${cols}.`);
      }
      ranks.set(tensor, Math.max(ranks.get(tensor) ?? 0, pair.rank));
    }
  }
  const targets = new Map<string, LoraStackTarget>();
  for (const [tensor, rank] of ranks) {
    const [inFeatures, outFeatures] = byName.get(tensor)!.dims;
    targets.set(tensor, { tensor, inFeatures, outFeatures, rank, a: new Float32Array(count * inFeatures * rank), b: new Float32Array(count * rank * outFeatures) });
  }
  adapters.forEach((lora, i) => {
    const index = i + 1;
    for (const { tensor, pair, rowOrder } of lora.targets) {
      const t = targets.get(tensor)!;
      const R = t.rank;
      const aBase = index * t.inFeatures * R;
      for (let k = 0; k < pair.rank; k++) {
        for (let c = 0; c < pair.inFeatures; c++) t.a[aBase + c * R + k] = pair.a[k * pair.inFeatures + c];
      }
      // A GGUF LoRA's B rows are in the file's (permuted) Q/K order: back to HF order, as the graph's outputs are.
      const rotary = /^blk\.\d+\.attn_([qk])\.weight$/.exec(tensor);
      const perm = permuted && rowOrder === 'gguf' && rotary ? rotaryUnpermutation(rotary[1] === 'q' ? spec.heads : spec.kvHeads, spec.headDim) : undefined;
      const bBase = index * R * t.outFeatures;
      for (let o = 0; o < pair.outFeatures; o++) {
        const src = (perm ? perm[o] : o) * pair.rank;
        for (let k = 0; k < pair.rank; k++) t.b[bBase + k * t.outFeatures + o] = pair.b[src + k] * pair.scale;
      }
    }
  });
  const lines = adapters.map((lora, i) => {
    const scales = [...new Set(lora.targets.map((t) => `rank ${t.pair.rank}, scale ${+t.pair.scale.toPrecision(6)}`))];
    return `LoRA ${lora.name} (adapter ${i + 1}): applied at run time to ${lora.targets.length} tensor${lora.targets.length === 1 ? '' : 's'} (${scales.join('; ')})`;
  });
  return { names: adapters.map((a) => a.name), targets, lines };
}
