/** Writes safetensors files (float32, float16 or bfloat16 tensors) for tests. */
export interface TensorSpec {
  name: string;
  shape: number[];
  values: ArrayLike<number>;
  dtype?: 'F32' | 'F16' | 'BF16';
}

function toHalf(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign | Math.round((mant | 0x800000) / 2 ** (14 - exp)); // subnormal
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | Math.round(mant / 8192);
}

export function writeSafetensors(tensors: TensorSpec[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const count = t.shape.reduce((n, d) => n * d, 1);
    if (count !== t.values.length) throw new Error(`${t.name}: ${t.values.length} values for shape ${t.shape}`);
    const size = dtype === 'F32' ? 4 : 2;
    const bytes = new Uint8Array(count * size);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < count; i++) {
      const v = t.values[i];
      if (dtype === 'F32') view.setFloat32(i * 4, v, true);
      else if (dtype === 'F16') view.setUint16(i * 2, toHalf(v), true);
      else view.setUint16(i * 2, new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16, true);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
