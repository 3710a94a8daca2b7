/**
 * Writing a new ONNX model: nodes, initializers (large ones as external data through a sink, so the
 * 2 GB protobuf limit never applies), graph inputs and outputs. Built on the protobuf writer the
 * graph rewrites use; platform-neutral (the sink decides where the weight bytes go).
 * @module
 */
import {
  ATTR_I, ATTR_INTS, ATTR_NAME, ATTR_TYPE, ATTR_TYPE_INT, ATTR_TYPE_INTS, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_NODE, GRAPH_OUTPUT,
  MODEL_GRAPH, MODEL_OPSET, NODE_ATTRIBUTE, NODE_DOMAIN, NODE_INPUT, NODE_NAME, NODE_OP_TYPE, NODE_OUTPUT, OPSET_DOMAIN, TENSOR_NAME,
  TENSOR_TYPE_ELEM, TYPE_TENSOR, VALUE_INFO_NAME, VALUE_INFO_TYPE,
} from './onnx-proto.js';
import { ProtoWriter } from './protobuf.js';

export const TensorType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9 } as const;

const MODEL_IR_VERSION = 1;
const MODEL_PRODUCER = 2;
const GRAPH_NAME = 2;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_RAW = 9;
const TENSOR_EXTERNAL = 13;
const TENSOR_LOCATION = 14;
const TENSOR_TYPE_SHAPE = 2;
const DIM_VALUE = 1;
const DIM_PARAM = 2;

/** Where external tensor data goes: `append` returns the offset the bytes were written at. */
export interface ExternalDataSink {
  /** The file name the model refers to (beside model.onnx). */
  readonly location: string;
  append(bytes: Uint8Array): number;
}

/** Collects the external data in memory (tests, the web adapter). */
export class MemorySink implements ExternalDataSink {
  private chunks: Uint8Array[] = [];
  size = 0;
  constructor(readonly location = 'model.onnx.data') {}
  append(bytes: Uint8Array): number {
    const offset = this.size;
    this.chunks.push(bytes.slice());
    this.size += bytes.byteLength;
    return offset;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

/** Tensors at least this big go to the external data, each at an offset aligned for memory mapping. */
const EXTERNAL_MIN_BYTES = 1024;
const EXTERNAL_ALIGN = 4096;

export type Attr = number | number[];
type Dim = number | string;

export class OnnxGraphWriter {
  private readonly nodes: Uint8Array[] = [];
  private readonly initializers: Uint8Array[] = [];
  private readonly inputs: Uint8Array[] = [];
  private readonly outputs: Uint8Array[] = [];
  private readonly domains = new Set<string>();
  private counter = 0;
  private dataEnd = 0;
  /** Bytes of initializer data written (inline and external). */
  weightBytes = 0;

  constructor(private readonly sink: ExternalDataSink) {}

  /** A fresh tensor name with this prefix. */
  name(prefix: string): string {
    return `${prefix}_${++this.counter}`;
  }

  /** Adds a node; returns its outputs (fresh names unless given). */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, options: { outputs?: number | string[]; domain?: string } = {}): string[] {
    const outs = Array.isArray(options.outputs)
      ? options.outputs
      : Array.from({ length: options.outputs ?? 1 }, () => this.name(`/${opType}`));
    const w = new ProtoWriter();
    for (const i of inputs) w.string(NODE_INPUT, i);
    for (const o of outs) w.string(NODE_OUTPUT, o);
    w.string(NODE_NAME, this.name(opType));
    w.string(NODE_OP_TYPE, opType);
    for (const [name, value] of Object.entries(attrs)) {
      w.message(NODE_ATTRIBUTE, (a) => {
        a.string(ATTR_NAME, name);
        if (Array.isArray(value)) a.packedVarints(ATTR_INTS, value).varint(ATTR_TYPE, ATTR_TYPE_INTS);
        else a.varint(ATTR_I, value).varint(ATTR_TYPE, ATTR_TYPE_INT);
      });
    }
    if (options.domain) {
      w.string(NODE_DOMAIN, options.domain);
      this.domains.add(options.domain);
    }
    this.nodes.push(w.finish());
    return outs;
  }

  /** One-output node. */
  op1(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, domain?: string): string {
    return this.op(opType, inputs, attrs, { domain })[0];
  }

  /** Adds an initializer (raw little-endian bytes); large ones are written to the sink. */
  tensor(name: string, type: number, dims: number[], raw: Uint8Array): string {
    const w = new ProtoWriter().packedVarints(TENSOR_DIMS, dims).varint(TENSOR_DATA_TYPE, type).string(TENSOR_NAME, name);
    this.weightBytes += raw.byteLength;
    if (raw.byteLength < EXTERNAL_MIN_BYTES) w.bytes(TENSOR_RAW, raw);
    else {
      const pad = (EXTERNAL_ALIGN - (this.dataEnd % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
      if (pad) this.sink.append(new Uint8Array(pad));
      const offset = this.sink.append(raw);
      this.dataEnd = offset + raw.byteLength;
      const entry = (key: string, value: string) => w.message(TENSOR_EXTERNAL, (e) => e.string(1, key).string(2, value));
      entry('location', this.sink.location);
      entry('offset', String(offset));
      entry('length', String(raw.byteLength));
      w.varint(TENSOR_LOCATION, 1);
    }
    this.initializers.push(w.finish());
    return name;
  }

  f32(name: string, values: Float32Array | number[], dims: number[] = [values.length]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    return this.tensor(name, TensorType.FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  i64(values: number[], dims: number[] = [values.length], name = this.name('const')): string {
    return this.tensor(name, TensorType.INT64, dims, new Uint8Array(BigInt64Array.from(values, BigInt).buffer));
  }

  /** A float32 scalar constant. */
  scalar(value: number, name = this.name('const')): string {
    return this.f32(name, [value], []);
  }

  input(name: string, type: number, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: number, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** The ModelProto bytes (ONNX opset `opset`, plus com.microsoft 1 where used). */
  finish(graphName: string, opset: number, producer = 'edgellm'): Uint8Array {
    const graph = new ProtoWriter();
    for (const n of this.nodes) graph.bytes(GRAPH_NODE, n);
    graph.string(GRAPH_NAME, graphName);
    for (const t of this.initializers) graph.bytes(GRAPH_INITIALIZER, t);
    for (const i of this.inputs) graph.bytes(GRAPH_INPUT, i);
    for (const o of this.outputs) graph.bytes(GRAPH_OUTPUT, o);
    const model = new ProtoWriter().varint(MODEL_IR_VERSION, 8).string(MODEL_PRODUCER, producer);
    model.bytes(MODEL_GRAPH, graph.finish());
    model.message(MODEL_OPSET, (o) => o.string(OPSET_DOMAIN, '').varint(2, opset));
    for (const d of this.domains) model.message(MODEL_OPSET, (o) => o.string(OPSET_DOMAIN, d).varint(2, 1));
    return model.finish();
  }
}

function valueInfo(name: string, type: number, dims: Dim[]): Uint8Array {
  return new ProtoWriter()
    .string(VALUE_INFO_NAME, name)
    .message(VALUE_INFO_TYPE, (t) =>
      t.message(TYPE_TENSOR, (tt) => {
        tt.varint(TENSOR_TYPE_ELEM, type);
        tt.message(TENSOR_TYPE_SHAPE, (s) => {
          for (const d of dims) s.message(1, (dim) => (typeof d === 'number' ? dim.varint(DIM_VALUE, d) : dim.string(DIM_PARAM, d)));
        });
      }),
    )
    .finish();
}
