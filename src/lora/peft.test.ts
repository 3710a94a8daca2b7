import { describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../test/helpers/safetensors-writer.js';
import { mergeLoraPair, readPeftAdapter } from './peft.js';
import { readSafetensors, tensorToFloat32 } from './safetensors.js';

/** A seeded generator of values in [-1, 1). */
function random(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
const values = (n: number, rnd: () => number) => Float32Array.from({ length: n }, rnd);

/** W + scale * B @ A, in [out, in], computed the plain way. */
function reference(w: Float32Array, a: Float32Array, b: Float32Array, rank: number, inF: number, outF: number, scale: number): Float32Array {
  const out = w.slice();
  for (let o = 0; o < outF; o++)
    for (let i = 0; i < inF; i++) {
      let sum = 0;
      for (let k = 0; k < rank; k++) sum += b[o * rank + k] * a[k * inF + i];
      out[o * inF + i] += scale * sum;
    }
  return out;
}

describe('safetensors', () => {
  it('reads what the writer wrote: F32 exactly, F16 and BF16 to their precision, metadata', () => {
    const v = [0.5, -1.25, 3, 1e-3, 65504, -0];
    const file = readSafetensors(
      writeSafetensors(
        [
          { name: 'x', shape: [2, 3], values: v },
          { name: 'h', shape: [6], values: v, dtype: 'F16' },
          { name: 'b', shape: [3, 2], values: v, dtype: 'BF16' },
        ],
        { format: 'pt' },
      ),
    );
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...tensorToFloat32(file.tensors.get('x')!)]).toEqual(v.map(Math.fround));
    expect(file.tensors.get('h')!.shape).toEqual([6]);
    const h = tensorToFloat32(file.tensors.get('h')!);
    v.forEach((x, i) => expect(h[i]).toBeCloseTo(x, 3));
    const bf = tensorToFloat32(file.tensors.get('b')!);
    v.forEach((x, i) => expect(Math.abs(bf[i] - x)).toBeLessThanOrEqual(Math.abs(x) / 128));
  });

  it('refuses a truncated file and a tensor that does not fit its range, naming it', () => {
    const bytes = writeSafetensors([{ name: 'x', shape: [4], values: [1, 2, 3, 4] }]);
    expect(() => readSafetensors(bytes.subarray(0, 6), 'a.safetensors')).toThrow(/a.safetensors is too short/);
    expect(() => readSafetensors(bytes.subarray(0, bytes.length - 4), 'a.safetensors')).toThrow(/tensor x .* does not fit/);
  });
});

describe('PEFT adapters', () => {
  const [inF, outF, rank] = [6, 5, 2];
  const rnd = random(7);
  const a = values(rank * inF, rnd);
  const b = values(outF * rank, rnd);
  const q = 'base_model.model.model.layers.0.self_attn.q_proj';
  const file = (extra: Array<{ name: string; shape: number[]; values: Float32Array }> = []) =>
    writeSafetensors([
      { name: `${q}.lora_A.weight`, shape: [rank, inF], values: a },
      { name: `${q}.lora_B.weight`, shape: [outF, rank], values: b },
      ...extra,
    ]);

  it('reads the pairs and the scale alpha / r, and merges W + scale * B @ A exactly as the plain formula', () => {
    const adapter = readPeftAdapter({ peft_type: 'LORA', r: rank, lora_alpha: 8, target_modules: ['q_proj'] }, file());
    const pair = adapter.pairs.get('model.layers.0.self_attn.q_proj')!;
    expect(pair).toMatchObject({ rank, inFeatures: inF, outFeatures: outF, scale: 4 });
    const w = values(outF * inF, rnd);
    const merged = w.slice();
    mergeLoraPair(merged, pair, 'out-in');
    const want = reference(w, a, b, rank, inF, outF, 4);
    merged.forEach((x, i) => expect(x).toBeCloseTo(want[i], 5));
    // The transposed ([in, out]) layout gets the transposed update.
    const wt = new Float32Array(inF * outF);
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) wt[i * outF + o] = w[o * inF + i];
    mergeLoraPair(wt, pair, 'in-out');
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) expect(wt[i * outF + o]).toBeCloseTo(want[o * inF + i], 5);
  });

  it('scales rank-stabilized adapters by alpha / sqrt(r) and applies rank and alpha patterns', () => {
    expect(readPeftAdapter({ r: rank, lora_alpha: 8, use_rslora: true }, file()).pairs.get('model.layers.0.self_attn.q_proj')!.scale).toBeCloseTo(8 / Math.sqrt(2));
    const patterned = readPeftAdapter({ r: 16, lora_alpha: 8, rank_pattern: { q_proj: 2 }, alpha_pattern: { 'layers.0.self_attn.q_proj': 1 } }, file());
    expect(patterned.pairs.get('model.layers.0.self_attn.q_proj')!.scale).toBe(0.5);
  });

  it('a zero B leaves the weight as it was', () => {
    const zero = writeSafetensors([
      { name: `${q}.lora_A.weight`, shape: [rank, inF], values: a },
      { name: `${q}.lora_B.weight`, shape: [outF, rank], values: new Float32Array(outF * rank) },
    ]);
    const w = values(outF * inF, rnd);
    const merged = w.slice();
    mergeLoraPair(merged, readPeftAdapter({ r: rank, lora_alpha: 16 }, zero).pairs.get('model.layers.0.self_attn.q_proj')!, 'out-in');
    expect(merged).toEqual(w);
  });

  it('refuses what it cannot merge: DoRA, other PEFT types, a lone half, a rank mismatch, a wrong weight size', () => {
    expect(() => readPeftAdapter({ r: rank, lora_alpha: 8, use_dora: true }, file())).toThrow(/DoRA/);
    expect(() => readPeftAdapter({ peft_type: 'IA3', r: rank, lora_alpha: 8 }, file())).toThrow(/IA3/);
    const lone = writeSafetensors([{ name: `${q}.lora_A.weight`, shape: [rank, inF], values: a }]);
    expect(() => readPeftAdapter({ r: rank, lora_alpha: 8 }, lone)).toThrow(/only one of lora_A and lora_B/);
    expect(() => readPeftAdapter({ r: 4, lora_alpha: 8 }, file())).toThrow(/rank 2, but the config says 4/);
    const pair = readPeftAdapter({ r: rank, lora_alpha: 8 }, file()).pairs.get('model.layers.0.self_attn.q_proj')!;
    expect(() => mergeLoraPair(new Float32Array(3), pair, 'out-in')).toThrow(/expects 5 x 6/);
  });
});
