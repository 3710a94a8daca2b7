/**
 * float16 tensors arrive as Uint16Array in Node 20 (no Float16Array): convert slices to float32.
 * @module
 */
export function toFloat32(data: Float32Array | Uint16Array, offset: number, length: number): Float32Array {
  if (data instanceof Float32Array) return data.slice(offset, offset + length);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = halfToFloat(data[offset + i]);
  return out;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
