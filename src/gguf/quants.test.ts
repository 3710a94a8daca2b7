import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedModel } from '../../test/helpers/shared-models.js';
import { floatToBf16, floatToHalf, halfBitsToFloat, quantize, quantTensor, randomBytes, randomFloats, writeGguf } from '../../test/helpers/gguf-writer.js';
import { blockQuantToFloat, dequantize, HALF_TO_FLOAT, toBlockQuant } from './quants.js';
import { GGML_BLOCK, readGguf, type GgmlType, type GgufTensor } from './reader.js';

const fr = Math.fround;
const h = (b: Uint8Array, at: number) => halfBitsToFloat(b[at] | (b[at + 1] << 8));
const i8 = (x: number) => (x << 24) >> 24;

/**
 * ggml-quants.c dequantize_row_* transcribed loop for loop (float32 arithmetic via fround), kept
 * apart from quants.ts' block visitors so a layout mistake cannot agree with itself.
 */
function ggmlDequantize(type: GgmlType, x: Uint8Array, k: number): Float32Array {
  const y = new Float32Array(k);
  const [qk, size] = GGML_BLOCK[type];
  const nb = k / qk;
  for (let i = 0; i < nb; i++) {
    const b = i * size;
    if (type === 'Q4_0') {
      const d = h(x, b);
      for (let j = 0; j < qk / 2; ++j) {
        const x0 = (x[b + 2 + j] & 0x0f) - 8;
        const x1 = (x[b + 2 + j] >> 4) - 8;
        y[i * qk + j] = fr(x0 * d);
        y[i * qk + j + qk / 2] = fr(x1 * d);
      }
    } else if (type === 'Q4_1') {
      const d = h(x, b), m = h(x, b + 2);
      for (let j = 0; j < qk / 2; ++j) {
        y[i * qk + j] = fr(fr((x[b + 4 + j] & 0x0f) * d) + m);
        y[i * qk + j + qk / 2] = fr(fr((x[b + 4 + j] >> 4) * d) + m);
      }
    } else if (type === 'Q5_0' || type === 'Q5_1') {
      const one = type === 'Q5_1';
      const d = h(x, b), m = one ? h(x, b + 2) : 0;
      const o = one ? b + 4 : b + 2;
      const qh = (x[o] | (x[o + 1] << 8) | (x[o + 2] << 16) | (x[o + 3] << 24)) >>> 0;
      for (let j = 0; j < qk / 2; ++j) {
        const xh0 = ((qh >>> j) << 4) & 0x10;
        const xh1 = (qh >>> (j + 12)) & 0x10;
        const x0 = ((x[o + 4 + j] & 0x0f) | xh0) - (one ? 0 : 16);
        const x1 = ((x[o + 4 + j] >> 4) | xh1) - (one ? 0 : 16);
        y[i * qk + j] = one ? fr(fr(x0 * d) + m) : fr(x0 * d);
        y[i * qk + j + qk / 2] = one ? fr(fr(x1 * d) + m) : fr(x1 * d);
      }
    } else if (type === 'Q8_0') {
      const d = h(x, b);
      for (let j = 0; j < qk; ++j) y[i * qk + j] = fr(i8(x[b + 2 + j]) * d);
    } else if (type === 'Q4_K' || type === 'Q5_K') {
      const five = type === 'Q5_K';
      const d = h(x, b), min = h(x, b + 2);
      const scales = b + 4, qhAt = b + 16;
      let q = five ? b + 48 : b + 16;
      let is = 0, u1 = 1, u2 = 2, yi = i * qk;
      const getScaleMin = (j: number): [number, number] =>
        j < 4
          ? [x[scales + j] & 63, x[scales + j + 4] & 63]
          : [(x[scales + j + 4] & 0xf) | ((x[scales + j - 4] >> 6) << 4), (x[scales + j + 4] >> 4) | ((x[scales + j] >> 6) << 4)];
      for (let j = 0; j < 256; j += 64) {
        let [sc, m] = getScaleMin(is + 0);
        const d1 = fr(d * sc), m1 = fr(min * m);
        [sc, m] = getScaleMin(is + 1);
        const d2 = fr(d * sc), m2 = fr(min * m);
        for (let l = 0; l < 32; ++l) y[yi++] = fr(fr(d1 * ((x[q + l] & 0xf) + (five && x[qhAt + l] & u1 ? 16 : 0))) - m1);
        for (let l = 0; l < 32; ++l) y[yi++] = fr(fr(d2 * ((x[q + l] >> 4) + (five && x[qhAt + l] & u2 ? 16 : 0))) - m2);
        q += 32; is += 2; u1 <<= 2; u2 <<= 2;
      }
    } else if (type === 'Q6_K') {
      const d = h(x, b + 208);
      let ql = b, qh = b + 128, sc = b + 192, yi = i * qk;
      for (let n = 0; n < 256; n += 128) {
        for (let l = 0; l < 32; ++l) {
          const is = l >> 4;
          const q1 = i8((x[ql + l] & 0xf) | (((x[qh + l] >> 0) & 3) << 4)) - 32;
          const q2 = i8((x[ql + l + 32] & 0xf) | (((x[qh + l] >> 2) & 3) << 4)) - 32;
          const q3 = i8((x[ql + l] >> 4) | (((x[qh + l] >> 4) & 3) << 4)) - 32;
          const q4 = i8((x[ql + l + 32] >> 4) | (((x[qh + l] >> 6) & 3) << 4)) - 32;
          y[yi + l + 0] = fr(fr(d * i8(x[sc + is + 0])) * q1);
          y[yi + l + 32] = fr(fr(d * i8(x[sc + is + 2])) * q2);
          y[yi + l + 64] = fr(fr(d * i8(x[sc + is + 4])) * q3);
          y[yi + l + 96] = fr(fr(d * i8(x[sc + is + 6])) * q4);
        }
        yi += 128; ql += 64; qh += 32; sc += 8;
      }
    }
  }
  return y;
}

const QUANT_TYPES: GgmlType[] = ['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'];
/** Where each type keeps its fp16 fields inside a block. */
const HALF_FIELDS: Record<string, number[]> = {
  Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
};

const tensorOf = (type: GgmlType, dims: number[], data: Uint8Array): GgufTensor => ({ name: `t.${type}`, type, dims, data, supported: true });

/** Random blocks: random quant bits, and fp16 scales drawn from `halves` (finite). */
function randomBlocks(type: GgmlType, blocks: number, seed: number, halves: (i: number) => number): Uint8Array {
  const [, size] = GGML_BLOCK[type];
  const data = randomBytes(blocks * size, seed);
  let n = 0;
  for (let b = 0; b < blocks; b++) for (const f of HALF_FIELDS[type]) {
    const bits = halves(n++);
    data[b * size + f] = bits & 0xff;
    data[b * size + f + 1] = bits >> 8;
  }
  return data;
}

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe('fp16 and bf16', () => {
  it('converts every half bit pattern exactly, and bf16 by its bits', () => {
    for (let b = 0; b < 65536; b++) {
      const v = HALF_TO_FLOAT[b];
      if (Number.isNaN(v)) expect((b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0).toBe(true);
      else expect(floatToHalf(v), `half 0x${b.toString(16)}`).toBe(b);
    }
    const values = [0, -0, 1, -2.5, 3.1415927, 1e-40, 65504, 1e38, -Infinity];
    const bf = quantize('BF16', values);
    const out = dequantize(tensorOf('BF16', [values.length], bf));
    const expected = Float32Array.from(values, (v) => {
      const u = new Uint32Array(1);
      u[0] = floatToBf16(v) << 16;
      return new Float32Array(u.buffer)[0];
    });
    expect(bitsOf(out)).toEqual(bitsOf(expected));
    expect(out[2]).toBe(1);
    expect(out[3]).toBe(-2.5);
    const f16 = dequantize(tensorOf('F16', [4], quantize('F16', [1, -0.5, 65504, 2 ** -24])));
    expect([...f16]).toEqual([1, -0.5, 65504, 2 ** -24]);
  });

  it('reads F32/F16 at an unaligned byte offset', () => {
    const buf = new Uint8Array(1 + 8);
    buf.set(quantize('F32', [1.5, -2]), 1);
    expect([...dequantize(tensorOf('F32', [2], buf.subarray(1)))]).toEqual([1.5, -2]);
    const half = new Uint8Array(1 + 4);
    half.set(quantize('F16', [0.25, 8]), 1);
    expect([...dequantize(tensorOf('F16', [2], half.subarray(1)))]).toEqual([0.25, 8]);
  });
});

describe.each(QUANT_TYPES)('%s', (type) => {
  const [qk] = GGML_BLOCK[type];
  const dims = [qk * 2, 3];
  const count = dims[0] * dims[1];

  it('dequantizes exactly as ggml dequantize_row_* does (random blocks, ordinary and extreme scales)', () => {
    const normal = (i: number) => floatToHalf(randomFloats(1, 1000 + i)[0] * 0.1);
    const extreme = (i: number) => [0x7bff, 0xfbff, 0x0001, 0x8001, 0x0400, 0x3c00, 0x0000, 0x5a00][i % 8];
    for (const [seed, halves] of [[1, normal], [2, extreme]] as const) {
      const data = randomBlocks(type, count / qk, seed, halves);
      const ours = dequantize(tensorOf(type, dims, data));
      expect(bitsOf(ours)).toEqual(bitsOf(ggmlDequantize(type, data, count)));
    }
  });

  it('round-trips the reference quantizer within the format precision', () => {
    const values = randomFloats(count, 7, 0.05);
    const back = dequantize(tensorOf(type, dims, quantize(type, values)));
    const range = 0.1;
    const levels = type === 'Q8_0' ? 255 : type.startsWith('Q5') || type === 'Q6_K' ? 31 : 15;
    // One quantization step of the block's range (K types also round their 6-bit scales: allow 2 steps).
    const tolerance = (range / levels) * (type.endsWith('_K') ? 2 : 1);
    let maxError = 0;
    for (let i = 0; i < count; i++) maxError = Math.max(maxError, Math.abs(back[i] - values[i]));
    expect(maxError).toBeLessThan(tolerance);
    expect(maxError).toBeGreaterThan(0);
  });

  it('toBlockQuant is the default-zero-point block form of the same weights', () => {
    const normal = (i: number) => floatToHalf(randomFloats(1, 500 + i)[0] * 0.02);
    const data = randomBlocks(type, count / qk, 11, normal);
    const tensor = tensorOf(type, dims, data);
    const b = toBlockQuant(tensor)!;
    const bits = type === 'Q4_0' || type === 'Q4_1' || type === 'Q4_K' ? 4 : 8;
    expect(b.bits).toBe(bits);
    expect(b.blockSize).toBe(type === 'Q6_K' ? 16 : 32);
    expect([b.rows, b.cols]).toEqual([3, dims[0]]);
    expect(b.q.length).toBe(count);
    expect(b.scales.length).toBe(count / b.blockSize);
    expect(Math.max(...b.q)).toBeLessThan(2 ** bits);
    expect(b.offsets !== undefined).toBe(['Q4_1', 'Q5_1', 'Q4_K', 'Q5_K'].includes(type));
    if (b.offsets) expect(b.offsets.length).toBe(b.scales.length);
    const dq = dequantize(tensor);
    expect(bitsOf(blockQuantToFloat(b))).toEqual(bitsOf(dq));
  });

  it('toBlockQuant on extreme scales: bit-exact except where the 4-bit offset m + 8d rounds (then within 1 ulp)', () => {
    // Scales and minimums from the whole finite fp16 range, mixed with its extremes.
    const fixed = [0x7bff, 0xfbff, 0x0001, 0x8001, 0x0400, 0x3c00, 0x0000, 0x5a00];
    const random = randomBytes(4096, 99);
    const extreme = (i: number) => {
      if (i % 3 === 0) return fixed[(i / 3) % fixed.length];
      const bits = random[(2 * i) % 4096] | (random[(2 * i + 1) % 4096] << 8);
      return (bits & 0x7c00) === 0x7c00 ? bits & 0xbfff : bits; // no inf / NaN
    };
    const data = randomBlocks(type, (count / qk) * 16, 21, extreme);
    const tensor = tensorOf(type, [dims[0], dims[1] * 16], data);
    const dq = dequantize(tensor);
    const block = toBlockQuant(tensor)!;
    const bq = blockQuantToFloat(block);
    const a = bitsOf(dq), b = bitsOf(bq);
    let mismatches = 0;
    let worst = 0;
    for (let i = 0; i < dq.length; i++) {
      if (a[i] === b[i] || (dq[i] === 0 && bq[i] === 0)) continue;
      mismatches++;
      // The error relative to the block's magnitude |8 * scale| + |offset|.
      const k = Math.floor(i / block.blockSize);
      const magnitude = Math.abs(8 * block.scales[k]) + Math.abs(block.offsets?.[k] ?? 0);
      worst = Math.max(worst, Math.abs(dq[i] - bq[i]) / magnitude);
    }
    if (process.env.GGUF_REPORT) console.log(type, { mismatches, of: dq.length, worst, log2: Math.log2(worst) });
    if (type === 'Q4_1' || type === 'Q4_K') {
      // m + 8d is rounded to float32 once; when m and 8d are far apart (2^13 and more) a weight moves
      // by about one float32 ulp of the block's magnitude (half an ulp from the offset, one from the last rounding).
      // Measured: 145 of 3072 (Q4_1) and 1860 of 24576 (Q4_K) weights differ, worst 2^-23.07 of the magnitude.
      expect(worst).toBeLessThanOrEqual(2 ** -22);
    } else {
      expect(mismatches).toBe(0);
    }
  });
});

describe('a GGUF file with a tensor of every type', () => {
  it('reads back what the writer quantized, every tensor at an aligned offset', () => {
    const types: GgmlType[] = ['F32', 'F16', 'BF16', ...QUANT_TYPES];
    const values = randomFloats(512 * 2, 17, 0.5);
    const bytes = writeGguf({ 'general.architecture': 'llama' }, types.map((type) => quantTensor(`w.${type}`, type, [512, 2], values)));
    const file = readGguf(bytes);
    for (const type of types) {
      const t = file.tensors.find((x) => x.name === `w.${type}`)!;
      expect(t.type).toBe(type);
      expect(t.supported).toBe(true);
      expect((t.data.byteOffset - file.dataOffset) % 32).toBe(0);
      const back = dequantize(t);
      const tolerance = type === 'F32' ? 0 : type === 'F16' ? 2 ** -11 : type === 'BF16' ? 2 ** -8 : 0.1;
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(back[i] - values[i]));
      expect(worst, type).toBeLessThanOrEqual(tolerance);
    }
  });
});

describe('toBlockQuant', () => {
  it('returns undefined for float types; keeps rows of 3-d tensors in order', () => {
    expect(toBlockQuant(tensorOf('F32', [2], quantize('F32', [1, 2])))).toBeUndefined();
    expect(toBlockQuant(tensorOf('F16', [2], quantize('F16', [1, 2])))).toBeUndefined();
    const values = randomFloats(32 * 2 * 2, 5);
    const t = tensorOf('Q8_0', [32, 2, 2], quantize('Q8_0', values));
    const b = toBlockQuant(t)!;
    expect([b.rows, b.cols]).toEqual([4, 32]);
    expect(bitsOf(blockQuantToFloat(b))).toEqual(bitsOf(dequantize(t)));
  });

  it('drops all-zero offsets (Q4_1 with m = -8d everywhere)', () => {
    const data = new Uint8Array(20);
    data.set([0x00, 0x3c, 0x00, 0xc8], 0); // d = 1, m = -8
    data.fill(0x9f, 4);
    const b = toBlockQuant(tensorOf('Q4_1', [32], data))!;
    expect(b.offsets).toBeUndefined();
    expect([...blockQuantToFloat(b)]).toEqual([...dequantize(tensorOf('Q4_1', [32], data))]);
  });
});

describe('on the real SmolLM2 Q4_1 file', () => {
  const dir = sharedModel('SmolLM2-135M-Instruct');
  it.skipIf(!dir)("layer 0's Q4_1 projections and the Q8_0 embedding: ggml's formulas, and the block form bit for bit", () => {
    // (All 211 quantized tensors, 134,479,872 weights, were checked bit for bit once; the test keeps one layer.)
    const file = readGguf(new Uint8Array(readFileSync(`${dir}/SmolLM2-135M-Instruct.Q4_1.gguf`)));
    const picked = file.tensors.filter((t) => t.name.startsWith('blk.0.') || t.name === 'token_embd.weight');
    expect(picked.filter((t) => t.type === 'Q4_1').length).toBe(7);
    for (const t of picked) {
      const rows = t.name === 'token_embd.weight' ? 512 : t.dims.slice(1).reduce((a, b) => a * b, 1);
      const [qk, size] = GGML_BLOCK[t.type];
      const part: GgufTensor = { ...t, dims: [t.dims[0], rows], data: t.data.subarray(0, (rows * t.dims[0] * size) / qk) };
      const dq = dequantize(part);
      if (t.type !== 'F32') expect(bitsOf(dq), t.name).toEqual(bitsOf(ggmlDequantize(t.type, part.data, dq.length)));
      const block = toBlockQuant(part);
      if (t.type === 'F32') {
        expect(block).toBeUndefined();
        continue;
      }
      expect(block!.bits, t.name).toBe(t.type === 'Q4_1' ? 4 : 8);
      expect(bitsOf(blockQuantToFloat(block!)), t.name).toEqual(bitsOf(dq));
    }
  });
});
