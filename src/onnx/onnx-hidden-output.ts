/**
 * Adds the final hidden state (the input of the lm_head) as an extra graph output of a causal-LM ONNX model,
 * without decoding or re-serialising the model: protobuf merges a repeated singular message field, so appending
 * `ModelProto.graph { output: ValueInfoProto }` to the original bytes adds one output to the existing graph.
 */
import {
  GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_NODE, GRAPH_OUTPUT, GRAPH_VALUE_INFO, MODEL_GRAPH, TENSOR_NAME, TENSOR_TYPE_ELEM, TYPE_TENSOR,
  VALUE_INFO_NAME, VALUE_INFO_TYPE, elemType, nameOf, parseNode, type OnnxNode,
} from './onnx-proto.js';
import { ProtoReader, ProtoWriter, WireType } from './protobuf.js';

export interface HiddenOutputPatch {
  model: Uint8Array;
  outputName: string;
}

/** Ops whose first input is the hidden state and whose output is the (pre-)logits. */
const MATMUL_OPS = new Set(['MatMul', 'Gemm', 'MatMulNBits', 'FusedMatMul', 'MatMulInteger', 'MatMulIntegerToFloat']);
/** Ops that may sit between the lm_head and `logits` (casts, bias, dequantisation scales, soft-capping, reshapes). */
const WRAPPER_OPS = new Set(['Cast', 'Identity', 'Add', 'Mul', 'Div', 'Tanh', 'Reshape', 'Squeeze', 'Unsqueeze']);
/**
 * Ops that may sit between the hidden state and the lm_head input (activation quantisation, casts,
 * the Slice to the last positions that `logits_to_keep` asks for: the hidden state is the whole tensor before it).
 */
const INPUT_WRAPPER_OPS = new Set(['DynamicQuantizeLinear', 'QuantizeLinear', 'Cast', 'Slice']);

interface GraphSummary {
  producers: Map<string, OnnxNode>;
  types: Map<string, number>;
  constants: Set<string>;
  outputs: Set<string>;
}

function summarise(model: Uint8Array): GraphSummary {
  const g: GraphSummary = { producers: new Map(), types: new Map(), constants: new Set(), outputs: new Set() };
  for (const m of new ProtoReader(model).fields()) {
    if (m.field !== MODEL_GRAPH || m.wire !== WireType.LEN) continue;
    for (const f of new ProtoReader(m.bytes!).fields()) {
      if (!f.bytes) continue;
      if (f.field === GRAPH_NODE) {
        const node = parseNode(f.bytes);
        for (const out of node.outputs) g.producers.set(out, node);
      } else if (f.field === GRAPH_INITIALIZER) {
        g.constants.add(nameOf(f.bytes, TENSOR_NAME));
      } else if (f.field === GRAPH_OUTPUT || f.field === GRAPH_VALUE_INFO || f.field === GRAPH_INPUT) {
        const name = nameOf(f.bytes, VALUE_INFO_NAME);
        const type = elemType(f.bytes);
        if (type) g.types.set(name, type);
        if (f.field === GRAPH_OUTPUT) g.outputs.add(name);
      }
    }
  }
  return g;
}

interface Hidden {
  name: string;
  /** A dtype-changing op was crossed, so the logits' element type may not be the hidden state's. */
  crossedCast: boolean;
}

/** Finds the tensor that feeds the lm_head, walking back from `tensor` through wrapper ops (depth-first). */
function findHidden(g: GraphSummary, tensor: string, depth = 0): Hidden | null {
  const node = g.producers.get(tensor);
  if (!node || depth > 8) return null;
  if (MATMUL_OPS.has(node.opType)) {
    let name = node.inputs[0];
    let crossedCast = false;
    for (let p = g.producers.get(name); p && INPUT_WRAPPER_OPS.has(p.opType); p = g.producers.get(name)) {
      name = p.inputs[0];
      crossedCast = true;
    }
    return name ? { name, crossedCast } : null;
  }
  if (!WRAPPER_OPS.has(node.opType)) return null;
  // Try each computed input (not weights, biases, scales or shapes held as initializers).
  for (const input of node.inputs) {
    if (!input || g.constants.has(input)) continue;
    const found = findHidden(g, input, depth + 1);
    if (found) return { name: found.name, crossedCast: found.crossedCast || node.opType === 'Cast' };
  }
  return null;
}

function valueInfo(name: string, elemType: number): (w: ProtoWriter) => void {
  return (w) => {
    w.string(VALUE_INFO_NAME, name);
    // Rank and dims are left unspecified: the runtime infers them.
    if (elemType) w.message(VALUE_INFO_TYPE, (t) => t.message(TYPE_TENSOR, (tt) => tt.varint(TENSOR_TYPE_ELEM, elemType)));
  };
}

/**
 * Returns the model bytes with one more graph output: the tensor that feeds the lm_head (the input of the node
 * that produces `logits`), or null if the pattern is not found. The result is the original bytes plus a few
 * appended bytes; the input is not modified.
 */
export function addHiddenStateOutput(model: Uint8Array, logitsName = 'logits'): HiddenOutputPatch | null {
  const g = summarise(model);
  if (!g.outputs.has(logitsName)) return null;
  const hidden = findHidden(g, logitsName);
  if (!hidden) return null;
  if (g.outputs.has(hidden.name)) return { model, outputName: hidden.name };
  // Element type: a declared type for the tensor if any, else the logits type unless a Cast was crossed.
  const elemType = g.types.get(hidden.name) ?? (hidden.crossedCast ? 0 : (g.types.get(logitsName) ?? 0));
  const tail = new ProtoWriter()
    .message(MODEL_GRAPH, (graph) => graph.message(GRAPH_OUTPUT, valueInfo(hidden.name, elemType)))
    .finish();
  const out = new Uint8Array(model.length + tail.length);
  out.set(model, 0);
  out.set(tail, model.length);
  return { model: out, outputName: hidden.name };
}
