/**
 * Reading ONNX protobuf: field numbers of onnx.proto and the few messages the graph rewrites
 * (hidden-state output, attention fusion) look into. Nodes keep their encoded bytes, so a rewrite
 * can copy the ones it does not change as they are.
 * @module
 */
import { ProtoReader, WireType, decodeString } from './protobuf.js';

/** ONNX field numbers (onnx.proto) and TensorProto data types. */
export const MODEL_GRAPH = 7;
export const MODEL_OPSET = 8;
export const OPSET_DOMAIN = 1;
export const GRAPH_NODE = 1;
export const GRAPH_INITIALIZER = 5;
export const GRAPH_INPUT = 11;
export const GRAPH_OUTPUT = 12;
export const GRAPH_VALUE_INFO = 13;
export const NODE_INPUT = 1;
export const NODE_OUTPUT = 2;
export const NODE_NAME = 3;
export const NODE_OP_TYPE = 4;
export const NODE_ATTRIBUTE = 5;
export const NODE_DOMAIN = 7;
export const ATTR_NAME = 1;
export const ATTR_I = 3;
export const ATTR_INTS = 8;
export const ATTR_TYPE = 20;
export const ATTR_TYPE_INT = 2;
export const ATTR_TYPE_INTS = 7;
export const TENSOR_NAME = 8;
export const VALUE_INFO_NAME = 1;
export const FLOAT = 1;
export const INT32 = 6;
export const INT64 = 7;
export const BOOL = 9;
export const VALUE_INFO_TYPE = 2;
export const TYPE_TENSOR = 1;
export const TENSOR_TYPE_ELEM = 1;

/** A NodeProto: its bytes, and what rewrites look at. `ints` holds int and ints attributes by name. */
export interface OnnxNode {
  raw: Uint8Array;
  inputs: string[];
  outputs: string[];
  opType: string;
  ints: Map<string, number[]>;
}

/** Reads a varint that encodes a signed 64-bit integer (attributes like `axis: -1`). */
function readInt64(reader: ProtoReader): number {
  let value = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    const b = reader.buf[reader.pos++];
    value |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return Number(BigInt.asIntN(64, value));
  }
  throw new Error('protobuf: varint too long');
}

function parseAttribute(bytes: Uint8Array): [string, number[]] {
  let name = '';
  const ints: number[] = [];
  const reader = new ProtoReader(bytes);
  while (!reader.eof()) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === WireType.VARINT) {
      const value = readInt64(reader);
      if (field === ATTR_I || field === ATTR_INTS) ints.push(value);
    } else if (wire === WireType.LEN) {
      const end = reader.varint() + reader.pos;
      if (field === ATTR_NAME) name = decodeString(bytes.subarray(reader.pos, end));
      else if (field === ATTR_INTS) {
        const packed = new ProtoReader(bytes, reader.pos, end);
        while (!packed.eof()) ints.push(readInt64(packed));
      }
      reader.pos = end;
    } else if (wire === WireType.I64) reader.pos += 8;
    else if (wire === WireType.I32) reader.pos += 4;
    else throw new Error(`protobuf: unsupported wire type ${wire} in an attribute`);
  }
  return [name, ints];
}

export function parseNode(raw: Uint8Array): OnnxNode {
  const node: OnnxNode = { raw, inputs: [], outputs: [], opType: '', ints: new Map() };
  for (const f of new ProtoReader(raw).fields()) {
    if (!f.bytes) continue;
    if (f.field === NODE_INPUT) node.inputs.push(decodeString(f.bytes));
    else if (f.field === NODE_OUTPUT) node.outputs.push(decodeString(f.bytes));
    else if (f.field === NODE_OP_TYPE) node.opType = decodeString(f.bytes);
    else if (f.field === NODE_ATTRIBUTE) {
      const [name, ints] = parseAttribute(f.bytes);
      node.ints.set(name, ints);
    }
  }
  return node;
}

export function nameOf(bytes: Uint8Array, field: number): string {
  for (const f of new ProtoReader(bytes).fields()) if (f.field === field && f.bytes) return decodeString(f.bytes);
  return '';
}

/** ValueInfoProto.type.tensor_type.elem_type, or 0 when not declared. */
export function elemType(valueInfo: Uint8Array): number {
  for (const f of new ProtoReader(valueInfo).fields()) {
    if (f.field !== VALUE_INFO_TYPE || !f.bytes) continue;
    for (const t of new ProtoReader(f.bytes).fields()) {
      if (t.field !== TYPE_TENSOR || !t.bytes) continue;
      for (const e of new ProtoReader(t.bytes).fields()) if (e.field === TENSOR_TYPE_ELEM && e.value !== undefined) return e.value;
    }
  }
  return 0;
}
