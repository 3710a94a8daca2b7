/**
 * GGUF reader: the metadata, tensor infos and tensor data (views, no copies) of a GGUF file held in
 * one Uint8Array. Versions 2 and 3, little-endian. Platform-neutral: no file system, no onnxruntime.
 * Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
 * @module
 */
import { concatBytes } from '../internal/bytes.js';

/** A GGUF metadata value. 64-bit integers are numbers when they are safe integers, else bigints. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** ggml tensor types by their on-disk number (ggml.h `enum ggml_type`); gaps are removed types. */
export const GGML_TYPES = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35, MXFP4: 39,
} as const;

export type GgmlType = keyof typeof GGML_TYPES;

/** [weights per block, bytes per block] of every type (ggml.c `type_traits`). */
export const GGML_BLOCK: Record<GgmlType, readonly [number, number]> = {
  F32: [1, 4], F16: [1, 2], BF16: [1, 2], F64: [1, 8], I8: [1, 1], I16: [1, 2], I32: [1, 4], I64: [1, 8],
  Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24], Q8_0: [32, 34], Q8_1: [32, 36],
  Q2_K: [256, 84], Q3_K: [256, 110], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210], Q8_K: [256, 292],
  IQ2_XXS: [256, 66], IQ2_XS: [256, 74], IQ3_XXS: [256, 98], IQ1_S: [256, 50], IQ4_NL: [32, 18],
  IQ3_S: [256, 110], IQ2_S: [256, 82], IQ4_XS: [256, 136], IQ1_M: [256, 56], TQ1_0: [256, 54], TQ2_0: [256, 66],
  MXFP4: [32, 17],
};

/** The types edgellm can dequantize and map (src/gguf/quants.ts); others parse but have `supported: false`. */
export const SUPPORTED_TYPES: ReadonlySet<GgmlType> = new Set<GgmlType>([
  'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K',
]);

const TYPE_NAMES = new Map<number, GgmlType>(Object.entries(GGML_TYPES).map(([name, n]) => [n, name as GgmlType]));

export interface GgufTensor {
  name: string;
  type: GgmlType;
  /** ggml order: dims[0] is the row length (input features), dims[1] the number of rows (output features). */
  dims: number[];
  /** The tensor's bytes: a view into the file's buffer, not a copy. */
  data: Uint8Array;
  /** Whether src/gguf/quants.ts can read this type; an importer refuses the others by name. */
  supported: boolean;
}

export interface GgufFile {
  version: number;
  metadata: Record<string, GgufValue>;
  tensors: GgufTensor[];
  /** `general.alignment`, or 32. */
  alignment: number;
  /** Where the tensor data section starts in the file. */
  dataOffset: number;
}

/** A malformed or unreadable GGUF file. */
export class GgufError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GgufError';
  }
}

/** The file ended before the header did; `needed` is the least number of bytes that might be enough. */
export class GgufTruncatedError extends GgufError {
  constructor(
    message: string,
    readonly needed: number,
  ) {
    super(message);
    this.name = 'GgufTruncatedError';
  }
}

const MAGIC = 0x46554747; // "GGUF" little-endian
const DEFAULT_ALIGNMENT = 32;

/** Metadata value types (gguf.md `gguf_metadata_value_type`). */
export const GGUF_VALUE_TYPES = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7,
  STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GgufValueType = keyof typeof GGUF_VALUE_TYPES;
const V = GGUF_VALUE_TYPES;

/** A tensor's size in bytes from its type and dims; throws when dims[0] is not whole blocks. */
export function tensorByteSize(name: string, type: GgmlType, dims: readonly number[]): number {
  const [blockWeights, blockBytes] = GGML_BLOCK[type];
  if (dims[0] % blockWeights !== 0) {
    throw new GgufError(`GGUF tensor ${name}: row length ${dims[0]} is not a multiple of ${type}'s block of ${blockWeights}`);
  }
  const rows = dims.slice(1).reduce((a, b) => a * b, 1);
  return (dims[0] / blockWeights) * blockBytes * rows;
}

class Cursor {
  pos = 0;
  private readonly view: DataView;
  private readonly decoder = new TextDecoder('utf-8');
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.bytes.byteLength) {
      throw new GgufTruncatedError(
        `GGUF file truncated: ${what} at byte ${this.pos} needs ${n} bytes, the file has ${this.bytes.byteLength}`,
        this.pos + n,
      );
    }
  }
  u8(what: string) { this.need(1, what); return this.view.getUint8(this.pos++); }
  u32(what: string) { this.need(4, what); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(`GGUF ${what} at byte ${this.pos - 8} is too large: ${v}`);
    return Number(v);
  }
  string(what: string): string {
    const length = this.u64(`${what} length`);
    this.need(length, what);
    const start = this.pos;
    this.pos += length;
    // ASCII fast path: most keys and token strings are short and ASCII.
    if (length < 64) {
      let ascii = true;
      for (let i = start; i < this.pos; i++) if (this.bytes[i] > 0x7f) { ascii = false; break; }
      if (ascii) return String.fromCharCode.apply(null, this.bytes.subarray(start, this.pos) as unknown as number[]);
    }
    return this.decoder.decode(this.bytes.subarray(start, this.pos));
  }
  value(type: number, what: string, depth = 0): GgufValue {
    const view = this.view;
    const at = (n: number) => { this.need(n, what); const p = this.pos; this.pos += n; return p; };
    switch (type) {
      case V.UINT8: return view.getUint8(at(1));
      case V.INT8: return view.getInt8(at(1));
      case V.UINT16: return view.getUint16(at(2), true);
      case V.INT16: return view.getInt16(at(2), true);
      case V.UINT32: return view.getUint32(at(4), true);
      case V.INT32: return view.getInt32(at(4), true);
      case V.FLOAT32: return view.getFloat32(at(4), true);
      case V.FLOAT64: return view.getFloat64(at(8), true);
      case V.BOOL: {
        const b = view.getUint8(at(1));
        if (b > 1) throw new GgufError(`GGUF ${what}: bool byte ${b} is neither 0 nor 1`);
        return b === 1;
      }
      case V.UINT64: { const v = view.getBigUint64(at(8), true); return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }
      case V.INT64: { const v = view.getBigInt64(at(8), true); return Number.isSafeInteger(Number(v)) ? Number(v) : v; }
      case V.STRING: return this.string(what);
      case V.ARRAY: {
        if (depth > 16) throw new GgufError(`GGUF ${what}: arrays nested more than 16 deep`);
        const elementType = this.u32(`${what} array type`);
        const count = this.u64(`${what} array length`);
        // Each element takes at least one byte: a count beyond the file is truncation, not an allocation.
        this.need(count, what);
        const out: GgufValue[] = new Array(count);
        for (let i = 0; i < count; i++) out[i] = this.value(elementType, what, depth + 1);
        return out;
      }
      default:
        throw new GgufError(`GGUF ${what}: unknown metadata value type ${type}`);
    }
  }
}

/**
 * Parses everything but the tensor data: the version, metadata, tensor infos (offsets relative to the
 * data section) and where the data section starts. Throws GgufTruncatedError when `bytes` ends inside
 * the header, so a caller streaming the file can read more and try again.
 */
export function readGgufHeader(bytes: Uint8Array) {
  const c = new Cursor(bytes);
  const magic = c.u32('magic');
  if (magic !== MAGIC) {
    const shown = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new GgufError(`not a GGUF file: the first bytes are ${shown}, not "GGUF"`);
  }
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >> 8) & 0xff00) | (version >>> 24);
    if (swapped === 2 || swapped === 3) throw new GgufError(`big-endian GGUF files are not supported (version ${swapped})`);
    throw new GgufError(`GGUF version ${version} is not supported (versions 2 and 3 are)`);
  }
  const tensorCount = c.u64('tensor count');
  const kvCount = c.u64('metadata count');
  const metadata: Record<string, GgufValue> = {};
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key #${i}`);
    const type = c.u32(`metadata ${key} type`);
    metadata[key] = c.value(type, `metadata ${key}`);
  }
  const alignment = metadata['general.alignment'] ?? DEFAULT_ALIGNMENT;
  if (typeof alignment !== 'number' || alignment <= 0 || alignment % 8 !== 0) {
    throw new GgufError(`GGUF general.alignment ${String(alignment)} is not a positive multiple of 8`);
  }
  const infos: { name: string; type: GgmlType | number; dims: number[]; offset: number; size: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor #${i} name`);
    const nDims = c.u32(`tensor ${name} dimension count`);
    if (nDims > 4) throw new GgufError(`GGUF tensor ${name} has ${nDims} dimensions (ggml allows at most 4)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`tensor ${name} dimension ${d}`));
    const typeNumber = c.u32(`tensor ${name} type`);
    const offset = c.u64(`tensor ${name} offset`);
    const type = TYPE_NAMES.get(typeNumber);
    if (type === undefined) throw new GgufError(`GGUF tensor ${name} has unknown ggml type ${typeNumber}`);
    if (offset % alignment !== 0) throw new GgufError(`GGUF tensor ${name}: offset ${offset} is not aligned to ${alignment}`);
    infos.push({ name, type, dims, offset, size: tensorByteSize(name, type, dims) });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const dataSize = infos.reduce((end, t) => Math.max(end, t.offset + t.size), 0);
  return { version, metadata, alignment, dataOffset, dataSize, tensors: infos as { name: string; type: GgmlType; dims: number[]; offset: number; size: number }[] };
}

export type GgufHeader = ReturnType<typeof readGgufHeader>;

/** Reads a whole GGUF file; tensor data are views into `bytes`. */
export function readGguf(bytes: Uint8Array): GgufFile {
  const header = readGgufHeader(bytes);
  const tensors = header.tensors.map(({ name, type, dims, offset, size }): GgufTensor => {
    const start = header.dataOffset + offset;
    if (start + size > bytes.byteLength) {
      throw new GgufTruncatedError(
        `GGUF file truncated: tensor ${name} needs bytes ${start}..${start + size}, the file has ${bytes.byteLength}`,
        start + size,
      );
    }
    return { name, type, dims, data: bytes.subarray(start, start + size), supported: SUPPORTED_TYPES.has(type) };
  });
  return { version: header.version, metadata: header.metadata, tensors, alignment: header.alignment, dataOffset: header.dataOffset };
}

/**
 * Reads a GGUF file from a stream or a fetch Response into one buffer of exactly the file's size
 * (known once the header is read), so the file is never held twice: only the header's chunks are
 * copied twice. Stops reading at the end of the last tensor.
 */
export async function readGgufStream(
  source: ReadableStream<Uint8Array> | Response,
  /** Called with the header before the tensor data are read: throw to stop there (a memory budget, say). */
  onHeader?: (header: GgufHeader) => void,
): Promise<GgufFile> {
  const stream = typeof Response !== 'undefined' && source instanceof Response ? source.body : (source as ReadableStream<Uint8Array>);
  if (!stream) throw new GgufError('GGUF response has no body');
  const reader = stream.getReader();
  try {
    // 1. Collect chunks until the header parses.
    const chunks: Uint8Array[] = [];
    let received = 0;
    let header: ReturnType<typeof readGgufHeader> | undefined;
    let nextTry = 1 << 16;
    let done = false;
    while (!header) {
      if (received >= nextTry || done) {
        const head = concatBytes(chunks, received);
        chunks.length = 0;
        chunks.push(head);
        try {
          header = readGgufHeader(head);
          break;
        } catch (error) {
          if (!(error instanceof GgufTruncatedError) || done) throw error;
          nextTry = Math.max(error.needed, received * 2);
        }
      }
      const next = await reader.read();
      if (next.done) done = true;
      else {
        chunks.push(next.value);
        received += next.value.byteLength;
      }
    }
    onHeader?.(header);
    // 2. One buffer of the file's size; the header bytes move in, the rest streams straight into it.
    const total = header.dataOffset + header.dataSize;
    const bytes = new Uint8Array(Math.max(total, received));
    bytes.set(chunks[0].subarray(0, bytes.byteLength));
    let filled = received;
    while (filled < total) {
      const next = await reader.read();
      if (next.done) break;
      const chunk = next.value.subarray(0, total - filled);
      bytes.set(chunk, filled);
      filled += chunk.byteLength;
    }
    if (filled < total) throw new GgufTruncatedError(`GGUF stream ended after ${filled} bytes; its tensors need ${total}`, total);
    return readGguf(bytes);
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** A number from the metadata: the value of `key`, else `fallback`, else an error naming the key. */
export function metaNumber(file: Pick<GgufFile, 'metadata'>, key: string, fallback?: number): number {
  const v = metaOptionalNumber(file, key);
  if (v !== undefined) return v;
  if (fallback !== undefined) return fallback;
  throw new GgufError(`GGUF metadata ${key} is missing`);
}

export function metaOptionalNumber(file: Pick<GgufFile, 'metadata'>, key: string): number | undefined {
  const v = file.metadata[key];
  if (v === undefined) return undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'number') throw new GgufError(`GGUF metadata ${key} is not a number`);
  return v;
}

export function metaString(file: Pick<GgufFile, 'metadata'>, key: string): string | undefined {
  const v = file.metadata[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new GgufError(`GGUF metadata ${key} is not a string`);
  return v;
}
