/**
 * Reads the safetensors format (what PEFT saves adapters in): an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range, then the data.
 * Platform-neutral; tensors are views of the given bytes.
 * @module
 */
import { halfToFloat } from '../internal/float16.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface SafeTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafeTensor>;
}

const BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function readSafetensors(bytes: Uint8Array, name = 'safetensors file'): SafetensorsFile {
  if (bytes.length < 8) throw new Error(`${name} is too short to be a safetensors file.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new Error(`${name}: its header claims ${headerLength} bytes, more than the file holds.`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    throw new Error(`${name}: the header is not JSON (not a safetensors file?).`);
  }
  const data = bytes.subarray(8 + headerLength);
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const info = value as { dtype: SafetensorsDtype; shape: number[]; data_offsets: [number, number] };
    const size = BYTES[info.dtype];
    if (size === undefined) throw new Error(`${name}: tensor ${key} has dtype ${info.dtype}, which this reader does not know.`);
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((n, d) => n * d, 1);
    if (end - begin !== count * size || end > data.length) {
      throw new Error(`${name}: tensor ${key} (${info.dtype} ${JSON.stringify(info.shape)}) does not fit its byte range ${begin}..${end}.`);
    }
    tensors.set(key, { name: key, dtype: info.dtype, shape: info.shape, data: data.subarray(begin, end) });
  }
  return { metadata, tensors };
}

/** A floating-point tensor's values as float32 (F32, F16, BF16, F64). */
export function tensorToFloat32(tensor: SafeTensor): Float32Array {
  const { data } = tensor;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = tensor.shape.reduce((n, d) => n * d, 1);
  const out = new Float32Array(count);
  switch (tensor.dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    default:
      throw new Error(`tensor ${tensor.name} is ${tensor.dtype}, not a float type.`);
  }
}
