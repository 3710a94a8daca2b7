/**
 * float16 tensors arrive as Uint16Array where there is no Float16Array (Node 20), and as
 * Float16Array where there is (workerd, recent browsers): convert slices to float32.
 * @module
 */
export type HalfOrFloatArray = Float32Array | Uint16Array | ArrayLike<number>;

export function toFloat32(data: HalfOrFloatArray, offset: number, length: number): Float32Array {
  if (data instanceof Float32Array) return data.slice(offset, offset + length);
  const out = new Float32Array(length);
  // A Uint16Array holds raw half-precision bits; any other array (Float16Array) holds the values.
  if (data instanceof Uint16Array) for (let i = 0; i < length; i++) out[i] = halfToFloat(data[offset + i]);
  else for (let i = 0; i < length; i++) out[i] = data[offset + i];
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
