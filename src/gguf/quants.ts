/**
 * GGML block formats: `dequantize` (ggml-quants.c `dequantize_row_*`, in float32 arithmetic, fp16 and
 * bf16 bit-exact) and `toBlockQuant`, the same weights as one unsigned value per weight with a scale
 * (and an optional offset) per block, ready for 4- or 8-bit MatMulNBits with its default zero point.
 * @module
 */
import { halfToFloat } from '../internal/float16.js';
import { GgufError, type GgmlType, type GgufTensor } from './reader.js';

/**
 * `w[r][c] = scales[r][b] * (q[r][c] - 2**(bits-1)) + (offsets?.[r][b] ?? 0)`, `b = floor(c / blockSize)`,
 * each operation rounded to float32. Equals `dequantize` bit for bit except for Q4_1 and Q4_K, where the
 * offset `m + 8d` is itself rounded (see ARCHITECTURE.md, "GGUF import").
 */
export interface BlockQuant {
  /** Storage bits of q. */
  bits: 4 | 8;
  /** Weights per block along a row (32, or 16 for Q6_K). */
  blockSize: number;
  /** rows = output features (dims[1] and up), cols = input features (dims[0]). */
  rows: number;
  cols: number;
  /** One unsigned value per weight, row-major [rows, cols], 0 <= q < 2**bits. */
  q: Uint8Array;
  /** [rows, cols / blockSize] */
  scales: Float32Array;
  /** [rows, cols / blockSize]; absent when all zero. */
  offsets?: Float32Array;
}

const fr = Math.fround;

/** float16 bits -> float32 value, for all 65536 bit patterns (exact: every half is a float). */
export const HALF_TO_FLOAT: Float32Array = Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));

const rowsOf = (t: GgufTensor) => t.dims.slice(1).reduce((a, b) => a * b, 1);
const countOf = (t: GgufTensor) => t.dims.reduce((a, b) => a * b, 1);

/** A Uint16/Float32 view when the bytes are aligned for it, else an aligned copy (little-endian hosts). */
function u16(data: Uint8Array): Uint16Array {
  if (data.byteOffset % 2 === 0) return new Uint16Array(data.buffer, data.byteOffset, data.byteLength >> 1);
  return new Uint16Array(data.slice().buffer);
}

/** The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (ggml get_scale_min_k4). */
function scaleMinK4(j: number, s: Uint8Array, at: number): [number, number] {
  if (j < 4) return [s[at + j] & 63, s[at + j + 4] & 63];
  return [(s[at + j + 4] & 0xf) | ((s[at + j - 4] >> 6) << 4), (s[at + j + 4] >> 4) | ((s[at + j] >> 6) << 4)];
}

/**
 * Visits every block of a quantized tensor in the block-quant form: for each sub-block of `size`
 * weights, its signed values (before any zero point), its float32 scale, and its float32 offset,
 * with `w = fr(fr(scale * v) + offset)`. For Q4_1 and Q4_K the offset is the block's min term;
 * toBlockQuant folds the 4-bit shift into it.
 */
type SubBlockVisitor = (index: number, values: Int32Array, scale: number, offset: number) => void;

interface Format {
  /** Weights per sub-block (the BlockQuant block). */
  size: number;
  bits: 4 | 8;
  /** Whether w = scale * v + offset (else w = scale * v). */
  hasOffset: boolean;
  /** Subtracted from v by ggml's formula (Q4_0: 8); v itself is the stored nibble for 4-bit formats. */
  center?: number;
  /** For 4-bit: v is 0..15 (unsigned nibble); for 8-bit: v is the signed value. */
  visit(data: Uint8Array, blocks: number, visit: SubBlockVisitor): void;
}

const half = (data: Uint8Array, at: number) => HALF_TO_FLOAT[data[at] | (data[at + 1] << 8)];

/**
 * Q5_0 (fp16 d, 32 high bits, 16 bytes of nibbles; w = d * (q - 16)) and Q5_1 (adds fp16 m;
 * w = d * q + m). Q5_0's v is signed (q - 16); Q5_1's is q itself, so its offset m needs no rounding.
 */
function q5Format(withMin: boolean): Format {
  const bytes = withMin ? 24 : 22;
  const head = withMin ? 4 : 2;
  return {
    size: 32, bits: 8, hasOffset: withMin,
    visit(data, blocks, visit) {
      const v = new Int32Array(32);
      const shift = withMin ? 0 : 16;
      for (let b = 0, at = 0; b < blocks; b++, at += bytes) {
        const d = half(data, at);
        const m = withMin ? half(data, at + 2) : 0;
        const h = at + head;
        const qh = (data[h] | (data[h + 1] << 8) | (data[h + 2] << 16) | (data[h + 3] << 24)) >>> 0;
        for (let j = 0; j < 16; j++) {
          const q = data[h + 4 + j];
          v[j] = ((q & 0xf) | (((qh >>> j) << 4) & 0x10)) - shift;
          v[j + 16] = ((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - shift;
        }
        visit(b, v, d, m);
      }
    },
  };
}

/**
 * Q4_K / Q5_K: super-blocks of 256 = 8 sub-blocks of 32 with 6-bit scales and mins; ggml computes
 * y = d1 * q - m1 with d1 = d * sc and m1 = dmin * m, each in float32. Q5_K adds a fifth bit from qh.
 */
function kFormat(bits: 4 | 5): Format {
  const bytes = bits === 4 ? 144 : 176;
  const qsAt = bits === 4 ? 16 : 48;
  return {
    size: 32, bits: bits === 4 ? 4 : 8, hasOffset: true,
    visit(data, blocks, visit) {
      const v = new Int32Array(32);
      for (let b = 0, at = 0; b < blocks; b++, at += bytes) {
        const d = half(data, at);
        const dmin = half(data, at + 2);
        for (let s = 0; s < 8; s++) {
          const [sc, m] = scaleMinK4(s, data, at + 4);
          const qs = at + qsAt + (s >> 1) * 32;
          const shift = s & 1 ? 4 : 0;
          if (bits === 4) for (let l = 0; l < 32; l++) v[l] = (data[qs + l] >> shift) & 0xf;
          else for (let l = 0; l < 32; l++) v[l] = ((data[qs + l] >> shift) & 0xf) | ((data[at + 16 + l] >> s) & 1 ? 16 : 0);
          visit(b * 8 + s, v, fr(d * sc), -fr(dmin * m));
        }
      }
    },
  };
}

const FORMATS: Partial<Record<GgmlType, Format>> = {
  Q4_0: {
    size: 32, bits: 4, hasOffset: false, center: 8,
    visit(data, blocks, visit) {
      const v = new Int32Array(32);
      for (let b = 0, at = 0; b < blocks; b++, at += 18) {
        const d = half(data, at);
        for (let j = 0; j < 16; j++) {
          v[j] = data[at + 2 + j] & 0xf;
          v[j + 16] = data[at + 2 + j] >> 4;
        }
        visit(b, v, d, 0);
      }
    },
  },
  Q4_1: {
    size: 32, bits: 4, hasOffset: true,
    visit(data, blocks, visit) {
      const v = new Int32Array(32);
      for (let b = 0, at = 0; b < blocks; b++, at += 20) {
        const d = half(data, at);
        const m = half(data, at + 2);
        for (let j = 0; j < 16; j++) {
          v[j] = data[at + 4 + j] & 0xf;
          v[j + 16] = data[at + 4 + j] >> 4;
        }
        visit(b, v, d, m);
      }
    },
  },
  Q5_0: q5Format(false),
  Q5_1: q5Format(true),
  Q8_0: {
    size: 32, bits: 8, hasOffset: false,
    visit(data, blocks, visit) {
      const v = new Int32Array(32);
      for (let b = 0, at = 0; b < blocks; b++, at += 34) {
        const d = half(data, at);
        for (let j = 0; j < 32; j++) v[j] = (data[at + 2 + j] << 24) >> 24;
        visit(b, v, d, 0);
      }
    },
  },
  Q4_K: kFormat(4),
  Q5_K: kFormat(5),
  Q6_K: {
    size: 16, bits: 8, hasOffset: false,
    visit(data, blocks, visit) {
      const v = new Int32Array(16);
      for (let b = 0, at = 0; b < blocks; b++, at += 210) {
        const d = half(data, at + 208);
        // 16 sub-blocks of 16 in weight order; sub-block s is half n = s >> 3, quarter k = (s >> 1) & 3, l0 = 16 * (s & 1).
        for (let s = 0; s < 16; s++) {
          const n = s >> 3, k = (s >> 1) & 3, l0 = (s & 1) * 16;
          const ql = at + n * 64 + (k & 1 ? 32 : 0), qh = at + 128 + n * 32;
          const sc = (data[at + 192 + s] << 24) >> 24;
          for (let i = 0; i < 16; i++) {
            const l = l0 + i;
            const low = k < 2 ? data[ql + l] & 0xf : data[ql + l] >> 4;
            v[i] = (low | (((data[qh + l] >> (2 * k)) & 3) << 4)) - 32;
          }
          // ggml: y = d * sc * q, evaluated as (d * sc) * q in float32.
          visit(b * 16 + s, v, fr(d * sc), 0);
        }
      }
    },
  },
};

/** The tensor's weights as float32, as ggml's dequantize_row_* computes them. */
export function dequantize(tensor: GgufTensor): Float32Array {
  const n = countOf(tensor);
  const { type, data } = tensor;
  if (type === 'F32') return data.byteOffset % 4 === 0 ? new Float32Array(data.buffer, data.byteOffset, n).slice() : new Float32Array(data.slice().buffer);
  if (type === 'F16') {
    const h = u16(data);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = HALF_TO_FLOAT[h[i]];
    return out;
  }
  if (type === 'BF16') {
    const h = u16(data);
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
    return new Float32Array(bits.buffer);
  }
  const format = FORMATS[type];
  if (!format) throw new GgufError(`GGUF tensor ${tensor.name}: type ${type} is not supported`);
  const out = new Float32Array(n);
  const size = format.size;
  const center = format.center ?? 0;
  format.visit(data, n / blocksPer(type), (index, v, scale, offset) => {
    const base = index * size;
    if (format.hasOffset) for (let j = 0; j < size; j++) out[base + j] = fr(fr(scale * v[j]) + offset);
    else for (let j = 0; j < size; j++) out[base + j] = fr(scale * (v[j] - center));
  });
  return out;
}

const blocksPer = (type: GgmlType) => (type === 'Q4_K' || type === 'Q5_K' || type === 'Q6_K' ? 256 : 32);

/** The block form `toBlockQuant` gives a type (bits, weights per scale, whether it may carry offsets), without converting. */
export function blockLayout(type: GgmlType): { bits: 4 | 8; blockSize: number; hasOffset: boolean } | undefined {
  const format = FORMATS[type];
  return format && { bits: format.bits, blockSize: format.size, hasOffset: format.hasOffset };
}

/**
 * The tensor as blocks for MatMulNBits with the default zero point (8 for 4 bits, 128 for 8 bits),
 * or undefined for F32/F16/BF16 (and unsupported types).
 * Q4_0 -> 4-bit; Q4_1 -> 4-bit, offsets m + 8d; Q8_0, Q5_0 -> 8-bit; Q5_1 -> 8-bit, offsets m;
 * Q4_K -> 4-bit block 32, scale d*sc, offset 8*d*sc - dmin*m; Q5_K -> 8-bit block 32, offset -dmin*m;
 * Q6_K -> 8-bit block 16, scale d*sc.
 */
export function toBlockQuant(tensor: GgufTensor): BlockQuant | undefined {
  const format = FORMATS[tensor.type];
  if (!format) return undefined;
  const cols = tensor.dims[0];
  const rows = rowsOf(tensor);
  const { size, bits } = format;
  const zero = bits === 4 ? 8 : 128;
  const n = rows * cols;
  const q = new Uint8Array(n);
  const scales = new Float32Array(n / size);
  const offsets = format.hasOffset ? new Float32Array(n / size) : undefined;
  let anyOffset = false;
  // Sub-blocks run in weight order and never cross a row (cols is whole blocks of 32 or 256).
  format.visit(tensor.data, n / blocksPer(tensor.type), (index, v, scale, offset) => {
    const base = index * size;
    if (bits === 4) for (let j = 0; j < size; j++) q[base + j] = v[j];
    else for (let j = 0; j < size; j++) q[base + j] = v[j] + 128;
    scales[index] = scale;
    if (offsets) {
      // 4-bit: w = s*v + o = s*(v - 8) + (o + 8s). 8-bit: v was stored as v + 128, the offset stays.
      const o = bits === 4 ? fr(offset + fr(zero * scale)) : offset;
      offsets[index] = o;
      if (o !== 0) anyOffset = true;
    }
  });
  return { bits, blockSize: size, rows, cols, q, scales, offsets: anyOffset ? offsets : undefined };
}

/** `scales * (q - zero) + offsets` in float32: what the block form stands for (tests, reference forward passes). */
export function blockQuantToFloat(b: BlockQuant): Float32Array {
  const out = new Float32Array(b.rows * b.cols);
  const zero = b.bits === 4 ? 8 : 128;
  for (let i = 0; i < out.length; i++) {
    const block = Math.floor(i / b.blockSize);
    const w = fr(b.scales[block] * (b.q[i] - zero));
    out[i] = b.offsets ? fr(w + b.offsets[block]) : w;
  }
  return out;
}
