/**
 * Writes GGUF files for tests (version 3 by default, little-endian), and reference quantizers that
 * turn float weights into the block formats of src/gguf/quants.ts, so a test can build a tiny file of
 * any architecture and quant type.
 *
 * The quantizers follow ggml's `quantize_row_*_ref` for the 32-weight types; for the K types they
 * pick the scales from each sub-block's min/max instead of llama.cpp's iterative search (the layout,
 * which is what the reader and importer must get right, is the same).
 */
import { GGML_BLOCK, GGML_TYPES, GGUF_VALUE_TYPES, type GgmlType, type GgufValueType } from '../../src/gguf/reader.js';

/** A metadata value with its GGUF type spelled out. */
export interface Typed {
  type: GgufValueType;
  value: unknown;
  /** For arrays: the element type (default: inferred). */
  elementType?: GgufValueType;
}
export const typed = (type: GgufValueType, value: unknown, elementType?: GgufValueType): Typed => ({ type, value, elementType });

/** Plain values get a type inferred: string, bool, non-negative integer -> UINT32, integer -> INT32, else FLOAT32, bigint -> INT64. */
export type WriterValue = string | number | boolean | bigint | Typed | WriterValue[];

export interface WriterTensor {
  name: string;
  type: GgmlType;
  dims: number[];
  /** The raw bytes in the type's format (see `quantize`). */
  data: Uint8Array;
}

export interface WriteOptions {
  version?: 2 | 3;
  alignment?: number;
}

function inferType(value: WriterValue): GgufValueType {
  if (typeof value === 'string') return 'STRING';
  if (typeof value === 'boolean') return 'BOOL';
  if (typeof value === 'bigint') return 'INT64';
  if (Array.isArray(value)) return 'ARRAY';
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return 'FLOAT32';
    return value >= 0 && value < 2 ** 32 ? 'UINT32' : 'INT32';
  }
  return value.type;
}

function inferElementType(values: WriterValue[]): GgufValueType {
  if (values.length === 0) return 'INT32';
  if (values.every((v) => typeof v === 'number')) {
    if (values.some((v) => !Number.isInteger(v))) return 'FLOAT32';
    return values.some((v) => (v as number) < 0) ? 'INT32' : 'UINT32';
  }
  return inferType(values[0]);
}

class Writer {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  pos = 0;
  private readonly encoder = new TextEncoder();
  private grow(n: number) {
    if (this.pos + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) { this.grow(1); this.view.setUint8(this.pos, v); this.pos += 1; }
  u32(v: number) { this.grow(4); this.view.setUint32(this.pos, v, true); this.pos += 4; }
  u64(v: number | bigint) { this.grow(8); this.view.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; }
  bytes(b: Uint8Array) { this.grow(b.byteLength); this.buf.set(b, this.pos); this.pos += b.byteLength; }
  string(s: string) { const b = this.encoder.encode(s); this.u64(b.byteLength); this.bytes(b); }
  pad(alignment: number) { while (this.pos % alignment) this.u8(0); }
  value(type: GgufValueType, raw: WriterValue, elementType?: GgufValueType) {
    const value = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw.value as WriterValue) : raw;
    // Grow first, then take the (possibly new) view.
    const at = (n: number) => { this.grow(n); const p = this.pos; this.pos += n; return p; };
    const num = value as number;
    let p: number;
    switch (type) {
      case 'UINT8': p = at(1); return this.view.setUint8(p, num);
      case 'INT8': p = at(1); return this.view.setInt8(p, num);
      case 'UINT16': p = at(2); return this.view.setUint16(p, num, true);
      case 'INT16': p = at(2); return this.view.setInt16(p, num, true);
      case 'UINT32': p = at(4); return this.view.setUint32(p, num, true);
      case 'INT32': p = at(4); return this.view.setInt32(p, num, true);
      case 'FLOAT32': p = at(4); return this.view.setFloat32(p, num, true);
      case 'FLOAT64': p = at(8); return this.view.setFloat64(p, num, true);
      case 'BOOL': p = at(1); return this.view.setUint8(p, value ? 1 : 0);
      case 'UINT64': p = at(8); return this.view.setBigUint64(p, BigInt(num), true);
      case 'INT64': p = at(8); return this.view.setBigInt64(p, BigInt(num), true);
      case 'STRING': return this.string(value as string);
      case 'ARRAY': {
        const list = value as WriterValue[];
        const et = elementType ?? inferElementType(list);
        this.u32(GGUF_VALUE_TYPES[et]);
        this.u64(list.length);
        for (const item of list) this.value(et === 'ARRAY' ? 'ARRAY' : et, item);
        return;
      }
    }
  }
  result() { return this.buf.slice(0, this.pos); }
}

/** A GGUF file with these metadata (in insertion order) and tensors. */
export function writeGguf(metadata: Record<string, WriterValue>, tensors: WriterTensor[], options: WriteOptions = {}): Uint8Array<ArrayBuffer> {
  const alignment = options.alignment ?? 32;
  const meta = { ...metadata };
  if (options.alignment !== undefined && meta['general.alignment'] === undefined) meta['general.alignment'] = typed('UINT32', alignment);
  const w = new Writer();
  w.u32(0x46554747);
  w.u32(options.version ?? 3);
  w.u64(tensors.length);
  w.u64(Object.keys(meta).length);
  for (const [key, value] of Object.entries(meta)) {
    const type = inferType(value);
    w.string(key);
    w.u32(GGUF_VALUE_TYPES[type]);
    w.value(type, value, typeof value === 'object' && !Array.isArray(value) ? (value as Typed).elementType : undefined);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPES[t.type]);
    w.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  w.pad(alignment);
  const dataStart = w.pos;
  tensors.forEach((t, i) => {
    while (w.pos < dataStart + offsets[i]) w.u8(0);
    w.bytes(t.data);
  });
  return w.result();
}

// ---- float16 / bfloat16 ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> IEEE half bits, round to nearest even (as ggml's GGML_FP32_TO_FP16). */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** float -> bfloat16 bits, round to nearest even (ggml_compute_fp32_to_bf16). */
export function floatToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 64) & 0xffff;
  return ((x + (0x7fff + ((x >>> 16) & 1))) >>> 16) & 0xffff;
}

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

// ---- reference quantizers: float weights (row-major [rows, dims[0]]) -> block bytes ----

const fr = Math.fround;
/** C's roundf: halves away from zero. */
const nearest = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

type Quantizer = (x: Float32Array, out: DataView, at: number) => void;

function q4_0(x: Float32Array, o: DataView, at: number) {
  let amax = 0, max = 0;
  for (const v of x) if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
  const d = fr(max / -8);
  const id = d ? fr(1 / d) : 0;
  o.setUint16(at, floatToHalf(d), true);
  for (let j = 0; j < 16; j++) {
    const x0 = Math.min(15, Math.trunc(fr(fr(x[j] * id) + 8.5)));
    const x1 = Math.min(15, Math.trunc(fr(fr(x[j + 16] * id) + 8.5)));
    o.setUint8(at + 2 + j, x0 | (x1 << 4));
  }
}

function q4_1(x: Float32Array, o: DataView, at: number) {
  let min = Infinity, max = -Infinity;
  for (const v of x) { min = Math.min(min, v); max = Math.max(max, v); }
  const d = fr((max - min) / 15);
  const id = d ? fr(1 / d) : 0;
  o.setUint16(at, floatToHalf(d), true);
  o.setUint16(at + 2, floatToHalf(min), true);
  for (let j = 0; j < 16; j++) {
    const x0 = Math.min(15, Math.trunc(fr(fr((x[j] - min) * id) + 0.5)));
    const x1 = Math.min(15, Math.trunc(fr(fr((x[j + 16] - min) * id) + 0.5)));
    o.setUint8(at + 4 + j, x0 | (x1 << 4));
  }
}

function q5(x: Float32Array, o: DataView, at: number, withMin: boolean) {
  let amax = 0, max = 0, min = Infinity, hi = -Infinity;
  for (const v of x) {
    if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    min = Math.min(min, v); hi = Math.max(hi, v);
  }
  const d = withMin ? fr((hi - min) / 31) : fr(max / -16);
  const id = d ? fr(1 / d) : 0;
  let p = at;
  o.setUint16(p, floatToHalf(d), true); p += 2;
  if (withMin) { o.setUint16(p, floatToHalf(min), true); p += 2; }
  let qh = 0;
  const qsAt = p + 4;
  for (let j = 0; j < 16; j++) {
    const q = (v: number) => withMin ? Math.min(31, Math.trunc(fr(fr((v - min) * id) + 0.5))) : Math.min(31, Math.trunc(fr(fr(v * id) + 16.5)));
    const x0 = q(x[j]), x1 = q(x[j + 16]);
    o.setUint8(qsAt + j, (x0 & 0xf) | ((x1 & 0xf) << 4));
    qh |= ((x0 & 0x10) >> 4) << j;
    qh |= ((x1 & 0x10) >> 4) << (j + 16);
  }
  o.setUint32(p, qh >>> 0, true);
}

function q8_0(x: Float32Array, o: DataView, at: number) {
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  const d = fr(amax / 127);
  const id = d ? fr(1 / d) : 0;
  o.setUint16(at, floatToHalf(d), true);
  for (let j = 0; j < 32; j++) o.setInt8(at + 2 + j, nearest(fr(x[j] * id)));
}

/** Packs 8 sub-block (scale, min) 6-bit pairs the way get_scale_min_k4 reads them. */
function packScalesK4(sc: number[], m: number[], o: DataView, at: number) {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      o.setUint8(at + j, (o.getUint8(at + j) & 0xc0) | sc[j]);
      o.setUint8(at + j + 4, (o.getUint8(at + j + 4) & 0xc0) | m[j]);
    } else {
      o.setUint8(at + j + 4, (sc[j] & 0xf) | ((m[j] & 0xf) << 4));
      o.setUint8(at + j - 4, (o.getUint8(at + j - 4) & 0x3f) | ((sc[j] >> 4) << 6));
      o.setUint8(at + j, (o.getUint8(at + j) & 0x3f) | ((m[j] >> 4) << 6));
    }
  }
}

/** Q4_K / Q5_K: 8 sub-blocks of 32, each w ≈ d*sc*q - dmin*m with 6-bit sc, m. */
function qK(x: Float32Array, o: DataView, at: number, bits: 4 | 5) {
  const levels = (1 << bits) - 1;
  const scale: number[] = [], mins: number[] = [];
  for (let s = 0; s < 8; s++) {
    let lo = 0, hi = -Infinity;
    for (let l = 0; l < 32; l++) { lo = Math.min(lo, x[s * 32 + l]); hi = Math.max(hi, x[s * 32 + l]); }
    scale.push((hi - lo) / levels);
    mins.push(-lo);
  }
  const maxScale = Math.max(...scale), maxMin = Math.max(...mins);
  const d = fr(maxScale / 63), dmin = fr(maxMin / 63);
  const dh = halfBitsToFloat(floatToHalf(d)), dminh = halfBitsToFloat(floatToHalf(dmin));
  const sc = scale.map((s) => (dh ? Math.min(63, Math.round(s / dh)) : 0));
  const m = mins.map((v) => (dminh ? Math.min(63, Math.round(v / dminh)) : 0));
  o.setUint16(at, floatToHalf(d), true);
  o.setUint16(at + 2, floatToHalf(dmin), true);
  for (let i = 0; i < 12; i++) o.setUint8(at + 4 + i, 0);
  packScalesK4(sc, m, o, at + 4);
  const qhAt = at + 16, qsAt = bits === 4 ? at + 16 : at + 48;
  if (bits === 5) for (let i = 0; i < 32; i++) o.setUint8(qhAt + i, 0);
  for (let s = 0; s < 8; s++) {
    const ds = fr(dh * sc[s]), ms = fr(dminh * m[s]);
    for (let l = 0; l < 32; l++) {
      const q = ds ? Math.max(0, Math.min(levels, Math.round((x[s * 32 + l] + ms) / ds))) : 0;
      // Sub-blocks 2k and 2k+1 share bytes qs[32k..32k+31]: low nibble, high nibble.
      const byte = qsAt + (s >> 1) * 32 + l;
      const nibble = q & 0xf;
      o.setUint8(byte, s & 1 ? (o.getUint8(byte) & 0x0f) | (nibble << 4) : (o.getUint8(byte) & 0xf0) | nibble);
      if (bits === 5 && q & 0x10) o.setUint8(qhAt + l, o.getUint8(qhAt + l) | (1 << s));
    }
  }
}

/** Q6_K: 16 sub-blocks of 16, w = d*sc*(q-32) with int8 sc, 6-bit q. */
function q6K(x: Float32Array, o: DataView, at: number) {
  const scales: number[] = [];
  for (let s = 0; s < 16; s++) {
    let amax = 0, max = 0;
    for (let l = 0; l < 16; l++) { const v = x[s * 16 + l]; if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; } }
    scales.push(max / -32);
  }
  let amax = 0, maxScale = 0;
  for (const s of scales) if (Math.abs(s) > amax) { amax = Math.abs(s); maxScale = s; }
  const d = fr(maxScale / -128);
  const dh = halfBitsToFloat(floatToHalf(d));
  const sc = scales.map((s) => (dh ? Math.max(-128, Math.min(127, Math.round(s / dh))) : 0));
  for (let i = 0; i < 210; i++) o.setUint8(at + i, 0);
  const ql = at, qh = at + 128, scAt = at + 192;
  sc.forEach((v, i) => o.setInt8(scAt + i, v));
  o.setUint16(at + 208, floatToHalf(d), true);
  for (let j = 0; j < 256; j++) {
    const s = j >> 4;
    const ds = fr(dh * sc[s]);
    const q = (ds ? Math.max(-32, Math.min(31, Math.round(x[j] / ds))) : 0) + 32;
    // Layout of dequantize_row_q6_K: halves of 128; within one, l = j % 32 and quarter k = (j % 128) >> 5.
    const n = j >> 7, k = (j & 127) >> 5, l = j & 31;
    const qlByte = ql + n * 64 + l + (k & 1 ? 32 : 0);
    const low = q & 0xf;
    o.setUint8(qlByte, k < 2 ? (o.getUint8(qlByte) & 0xf0) | low : (o.getUint8(qlByte) & 0x0f) | (low << 4));
    const qhByte = qh + n * 32 + l;
    o.setUint8(qhByte, o.getUint8(qhByte) | ((q >> 4) << (2 * k)));
  }
}

const QUANTIZERS: Partial<Record<GgmlType, Quantizer>> = {
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q5_0: (x, o, at) => q5(x, o, at, false),
  Q5_1: (x, o, at) => q5(x, o, at, true),
  Q8_0: q8_0,
  Q4_K: (x, o, at) => qK(x, o, at, 4),
  Q5_K: (x, o, at) => qK(x, o, at, 5),
  Q6_K: q6K,
};

/** Float weights (row-major, rows of dims[0]) in `type`'s on-disk format. */
export function quantize(type: GgmlType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  if (type === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  if (type === 'F16' || type === 'BF16') {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = type === 'F16' ? floatToHalf(values[i]) : floatToBf16(values[i]);
    return new Uint8Array(out.buffer);
  }
  const quantizer = QUANTIZERS[type];
  if (!quantizer) throw new Error(`no reference quantizer for ${type}`);
  const [blockWeights, blockBytes] = GGML_BLOCK[type];
  if (n % blockWeights) throw new Error(`${n} weights are not whole ${type} blocks of ${blockWeights}`);
  const out = new Uint8Array((n / blockWeights) * blockBytes);
  const view = new DataView(out.buffer);
  const x = Float32Array.from(values);
  for (let b = 0; b < n / blockWeights; b++) quantizer(x.subarray(b * blockWeights, (b + 1) * blockWeights), view, b * blockBytes);
  return out;
}

/** A tensor for writeGguf from float weights; dims in ggml order (dims[0] = row length). */
export function quantTensor(name: string, type: GgmlType, dims: number[], values: ArrayLike<number>): WriterTensor {
  return { name, type, dims, data: quantize(type, values) };
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
export function randomFloats(n: number, seed = 1, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** Deterministic pseudo-random bytes. */
export function randomBytes(n: number, seed = 1): Uint8Array {
  const f = randomFloats(n, seed);
  return Uint8Array.from(f, (v) => Math.floor((v + 1) * 128) & 0xff);
}
