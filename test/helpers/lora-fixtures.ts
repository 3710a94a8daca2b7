/**
 * Test LoRA adapters: random PEFT adapters (adapter_config.json + adapter_model.safetensors) and
 * an independent float64 reference merge into GGUF tensors, with llama.cpp's Q/K row permutation
 * written out from its converter's formula (not the importer's rotaryUnpermutation).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoraPair } from '../../src/lora/peft.js';
import type { DecoderSpec, SourceTensor } from '../../src/onnx/gguf-decoder-graph.js';
import { rng } from './gguf-reference.js';
import { writeSafetensors, type TensorSpec } from './safetensors-writer.js';

/** A LoRA pair before scaling: A [rank, in], B [out, rank] (the merge's scale is passed apart). */
export type TestPair = Omit<LoraPair, 'scale'>;

/** Random pairs for `modules` ([name, out, in]); `zero` makes every B zero (PEFT's initial state). */
export function randomPairs(modules: [string, number, number][], rank: number, seed: number, options: { zero?: boolean; std?: number } = {}): TestPair[] {
  const random = rng(seed);
  const std = options.std ?? 0.5;
  const values = (n: number) => Float32Array.from({ length: n }, () => (options.zero ? 0 : std * (2 * random() - 1)));
  return modules.map(([module, outFeatures, inFeatures]) => ({
    module, rank, inFeatures, outFeatures,
    a: Float32Array.from({ length: rank * inFeatures }, () => std * (2 * random() - 1)),
    b: values(outFeatures * rank),
  }));
}

/** The PEFT files of `pairs` (names as PEFT saves them: base_model.model.<module>.lora_A.weight). */
export function peftFiles(pairs: TestPair[], rank: number, alpha: number): { config: object; safetensors: Uint8Array } {
  const tensors: TensorSpec[] = pairs.flatMap((p) => [
    { name: `base_model.model.${p.module}.lora_A.weight`, shape: [p.rank, p.inFeatures], values: p.a },
    { name: `base_model.model.${p.module}.lora_B.weight`, shape: [p.outFeatures, p.rank], values: p.b },
  ]);
  const targets = [...new Set(pairs.map((p) => p.module.split('.').pop()!))];
  return { config: { peft_type: 'LORA', r: rank, lora_alpha: alpha, target_modules: targets }, safetensors: writeSafetensors(tensors) };
}

export function writePeftDir(dir: string, pairs: TestPair[], rank: number, alpha: number): string {
  mkdirSync(dir, { recursive: true });
  const { config, safetensors } = peftFiles(pairs, rank, alpha);
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'adapter_model.safetensors'), safetensors);
  return dir;
}

const GGUF_NAME: [RegExp, string][] = [
  [/^model\.layers\.(\d+)\.self_attn\.o_proj$/, 'blk.$1.attn_output.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.([qkv])_proj$/, 'blk.$1.attn_$2.weight'],
  [/^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj$/, 'blk.$1.ffn_$2.weight'],
  [/^lm_head$/, 'output.weight'],
];

/**
 * The base tensors with W + scale * B @ A added (float64 sums, one rounding to float32) as F32
 * tensors. For llama, the Q/K delta's rows go where llama.cpp's converter puts HF rows:
 * `reshape(heads, 2, hd/2, in).swapaxes(1, 2)`, i.e. HF row h*hd + j*hd/2 + i -> GGUF row h*hd + 2i + j.
 */
export function referenceMerge(spec: DecoderSpec, tensors: readonly SourceTensor[], dequantize: (t: SourceTensor) => Float32Array, pairs: TestPair[], scale: number): SourceTensor[] {
  const out = [...tensors];
  for (const p of pairs) {
    const name = GGUF_NAME.reduce<string | undefined>((found, [re, to]) => found ?? (re.test(p.module) ? p.module.replace(re, to) : undefined), undefined)!;
    const i = out.findIndex((t) => t.name === name);
    const w = Float64Array.from(dequantize(out[i]));
    const qk = /attn_([qk])\.weight$/.exec(name);
    const permute = qk && (spec.architecture === 'llama' || spec.architecture === 'mistral');
    const hd = spec.headDim;
    const half = hd / 2;
    const ggufRow = (r: number) => {
      if (!permute) return r;
      const h = Math.floor(r / hd);
      const j = Math.floor((r % hd) / half);
      const k = r % half;
      return h * hd + 2 * k + j;
    };
    for (let o = 0; o < p.outFeatures; o++) {
      const row = ggufRow(o) * p.inFeatures;
      for (let c = 0; c < p.inFeatures; c++) {
        let sum = 0;
        for (let k = 0; k < p.rank; k++) sum += p.b[o * p.rank + k] * p.a[k * p.inFeatures + c];
        w[row + c] += scale * sum;
      }
    }
    const f = Float32Array.from(w);
    out[i] = { ...out[i], type: 'F32', data: new Uint8Array(f.buffer) };
  }
  return out;
}

/** The attention and MLP modules of `layers` with their [out, in] shapes, for a decoder spec. */
export function decoderModules(spec: DecoderSpec, layers: number[], ffn: number, parts = ['q', 'k', 'v', 'o', 'gate', 'up', 'down']): [string, number, number][] {
  const { hidden: D, heads: H, kvHeads: KV, headDim: hd } = spec;
  const shapes: Record<string, [string, number, number]> = {
    q: ['self_attn.q_proj', H * hd, D], k: ['self_attn.k_proj', KV * hd, D], v: ['self_attn.v_proj', KV * hd, D], o: ['self_attn.o_proj', D, H * hd],
    gate: ['mlp.gate_proj', ffn, D], up: ['mlp.up_proj', ffn, D], down: ['mlp.down_proj', D, ffn],
  };
  return layers.flatMap((l) => parts.map((p) => [`model.layers.${l}.${shapes[p][0]}`, shapes[p][1], shapes[p][2]] as [string, number, number]));
}
