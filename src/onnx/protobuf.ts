/**
 * Minimal protobuf wire-format reader and writer (platform-neutral, no dependencies).
 * Enough to walk ONNX ModelProto fields without decoding initializers, and to write small graphs.
 */
import { concatBytes } from '../internal/bytes.js';

export const WireType = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

export interface ProtoField {
  field: number;
  wire: number;
  /** Byte offset of the tag within the reader's buffer. */
  start: number;
  /** Varint value (wire 0), or undefined. */
  value?: number;
  /** Payload (wire 2) as a zero-copy view, or undefined. */
  bytes?: Uint8Array;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** Sequential reader over one message's bytes. */
export class ProtoReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  eof(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a varint as a JS number (exact up to 2^53; negative int64 values come back as large positives). */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new Error('protobuf: varint too long');
  }

  /** Reads the next field (tag + payload). Unknown wire types throw. */
  next(): ProtoField {
    const start = this.pos;
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    switch (wire) {
      case WireType.VARINT:
        return { field, wire, start, value: this.varint() };
      case WireType.I64:
        this.advance(8);
        return { field, wire, start };
      case WireType.I32:
        this.advance(4);
        return { field, wire, start };
      case WireType.LEN: {
        const len = this.varint();
        const from = this.pos;
        this.advance(len);
        return { field, wire, start, bytes: this.buf.subarray(from, from + len) };
      }
      default:
        throw new Error(`protobuf: unsupported wire type ${wire} at byte ${start}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new Error('protobuf: field runs past the end of the message');
    this.pos += n;
  }

  /** Iterates all fields of the message. */
  *fields(): Generator<ProtoField> {
    while (!this.eof()) yield this.next();
  }
}

export function decodeString(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Accumulating writer. Nested messages are written with `message(field, w => ...)`. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  private length = 0;

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    this.chunks.push(Uint8Array.from(this.scratch));
    this.length += this.scratch.length;
    this.scratch = [];
  }

  private rawVarint(value: number | bigint): void {
    // Negative values are encoded as 64-bit two's complement (10 bytes), as protobuf int64/int32 do.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** int32/int64/enum/bool field. */
  varint(field: number, value: number | bigint | boolean): this {
    this.tag(field, WireType.VARINT);
    this.rawVarint(typeof value === 'boolean' ? (value ? 1 : 0) : value);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WireType.LEN);
    this.rawVarint(data.length);
    this.flushScratch();
    this.chunks.push(data);
    this.length += data.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8Encoder.encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** Already-encoded fields (tag and payload), copied as they are. */
  raw(data: Uint8Array): this {
    this.flushScratch();
    this.chunks.push(data);
    this.length += data.length;
    return this;
  }

  /** Packed repeated int64 field. */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    this.flushScratch();
    return concatBytes(this.chunks, this.length);
  }
}
