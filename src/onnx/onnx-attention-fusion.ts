/**
 * Load-time rewrite of an exported Llama-style decoder: each layer's attention, written out as
 * ~35 plain ONNX ops (reshape and transpose of q/k/v, rotate-half rotary, KV `Concat`, the
 * `Expand` of K/V heads, QKᵀ, scale, mask, softmax, ·V, transpose back), becomes one
 * `com.microsoft.GroupQueryAttention` node that does rotary, the KV append and grouped attention
 * in one kernel. Inputs and outputs of the graph stay as they were (`input_ids`, `attention_mask`,
 * `position_ids`, `past_key_values.*` -> `logits`, `present.*`), so the caller feeds it exactly as
 * before, left padding included:
 * - GQA's `position_ids` input takes the graph's `position_ids`;
 * - its `attention_bias` masks the padding (0 where `attention_mask` is 1, -1e9 where it is 0);
 * - `seqlens_k` says every row is full (`total - 1`), so GQA's own causal mask is the usual one.
 *
 * Matching is structural, not by node names, and declines (returns a reason) when any layer does
 * not look as expected. It cannot prove equivalence: callers must compare the rewritten model's
 * logits with the original's before using it (OrtCausalLM does).
 * @module
 */
import {
  ATTR_I, ATTR_INTS, ATTR_NAME, ATTR_TYPE, ATTR_TYPE_INT, ATTR_TYPE_INTS, BOOL, FLOAT, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_NODE,
  GRAPH_OUTPUT, GRAPH_VALUE_INFO, INT32, INT64, MODEL_GRAPH, MODEL_OPSET, NODE_ATTRIBUTE, NODE_DOMAIN, NODE_INPUT, NODE_NAME,
  NODE_OP_TYPE, NODE_OUTPUT, OPSET_DOMAIN, TENSOR_NAME, VALUE_INFO_NAME, elemType, nameOf, parseNode, type OnnxNode,
} from './onnx-proto.js';
import { ProtoReader, ProtoWriter } from './protobuf.js';

/** What the rewrite needs from config.json. */
export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  ropeTheta: number;
  /** Rows of the rotary cos/sin tables: the largest position the model will see, plus one. */
  maxPositions: number;
}

export type FusionResult = { model: Uint8Array; layers: number } | { reason: string };

/** The GroupQueryAttention CPU kernel rejects other head sizes at run time. */
const GQA_HEAD_DIM_MULTIPLE = 16;
/** Added to the scores of padding positions. Finite, so a row with nothing to attend to stays finite. */
const MASKED = -1e9;
const PREFIX = 'edgellm_gqa/';

export interface Graph {
  /** Graph fields other than nodes, in order, raw. */
  rest: { field: number; raw: Uint8Array; name?: string }[];
  nodes: OnnxNode[];
  producer: Map<string, OnnxNode>;
  consumers: Map<string, OnnxNode[]>;
  /** Initializers and graph inputs: tensors no node computes. */
  sources: Set<string>;
  inputs: Set<string>;
  /** Element type of each graph input (TensorProto.DataType; 0 when not declared). */
  inputTypes: Map<string, number>;
  outputs: Set<string>;
}

export function parseGraph(bytes: Uint8Array): Graph {
  const g: Graph = {
    rest: [], nodes: [], producer: new Map(), consumers: new Map(), sources: new Set(), inputs: new Set(), inputTypes: new Map(), outputs: new Set(),
  };
  const reader = new ProtoReader(bytes);
  while (!reader.eof()) {
    const f = reader.next();
    const raw = bytes.subarray(f.start, reader.pos);
    if (f.field === GRAPH_NODE && f.bytes) {
      g.nodes.push(parseNode(f.bytes));
      continue;
    }
    let name: string | undefined;
    if (f.field === GRAPH_INITIALIZER && f.bytes) g.sources.add((name = nameOf(f.bytes, TENSOR_NAME)));
    else if ((f.field === GRAPH_INPUT || f.field === GRAPH_OUTPUT || f.field === GRAPH_VALUE_INFO) && f.bytes) {
      name = nameOf(f.bytes, VALUE_INFO_NAME);
      if (f.field === GRAPH_INPUT) {
        g.sources.add(name);
        g.inputs.add(name);
        g.inputTypes.set(name, elemType(f.bytes));
      }
      if (f.field === GRAPH_OUTPUT) g.outputs.add(name);
    }
    g.rest.push({ field: f.field, raw, name });
  }
  for (const node of g.nodes) {
    for (const out of node.outputs) g.producer.set(out, node);
    for (const input of node.inputs) {
      if (!input) continue;
      const list = g.consumers.get(input) ?? [];
      list.push(node);
      g.consumers.set(input, list);
    }
  }
  return g;
}

const isPerm = (node: OnnxNode, perm: number[]) =>
  node.opType === 'Transpose' && (node.ints.get('perm') ?? []).join() === perm.join();

/**
 * Walks back from `tensor` through computed tensors (not initializers or graph inputs) to the
 * head split of a projection: Transpose(perm 0,2,1,3) of a Reshape. Returns the Reshape's input
 * (the projection's output, [B, S, heads * D]) when exactly one such split is found.
 */
function projectionBehind(g: Graph, tensor: string): string | undefined {
  const found = new Set<string>();
  const seen = new Set<string>();
  const queue = [tensor];
  while (queue.length && seen.size < 48) {
    const t = queue.shift()!;
    if (seen.has(t) || g.sources.has(t)) continue;
    seen.add(t);
    const node = g.producer.get(t);
    if (!node) continue;
    const reshape = g.producer.get(node.inputs[0]);
    if (isPerm(node, [0, 2, 1, 3]) && reshape?.opType === 'Reshape') {
      found.add(reshape.inputs[0]);
      continue;
    }
    if (node.opType === 'MatMul' || node.opType === 'Gather') continue; // another projection or a table lookup
    queue.push(...node.inputs.filter(Boolean));
  }
  return found.size === 1 ? [...found][0] : undefined;
}

/** Follows `tensor` forward through layout ops to the one MatMul that takes it as its second input. */
const LAYOUT_OPS = new Set(['Unsqueeze', 'Expand', 'Reshape', 'Transpose', 'Identity', 'Tile', 'Squeeze']);
function matmulAhead(g: Graph, tensor: string): OnnxNode | undefined {
  const found = new Set<OnnxNode>();
  const queue = [tensor];
  const seen = new Set<string>();
  while (queue.length && seen.size < 16) {
    const t = queue.shift()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const node of g.consumers.get(t) ?? []) {
      if (node.opType === 'MatMul' && node.inputs[1] === t) found.add(node);
      else if (LAYOUT_OPS.has(node.opType) && node.inputs[0] === t) queue.push(...node.outputs);
      else return undefined; // the cache feeds something this rewrite does not know
    }
  }
  return found.size === 1 ? [...found][0] : undefined;
}

/** True when `from` is reachable backwards from `tensor` through elementwise/softmax/layout ops. */
const SCORE_OPS = new Set(['Softmax', 'Add', 'Mul', 'Div', 'Sub', 'Where', 'Cast', 'Reshape', 'Transpose', 'Max', 'Min', 'Clip']);
function reachesBack(g: Graph, tensor: string, from: string): boolean {
  const queue = [tensor];
  const seen = new Set<string>();
  while (queue.length && seen.size < 32) {
    const t = queue.shift()!;
    if (t === from) return true;
    if (seen.has(t)) continue;
    seen.add(t);
    const node = g.producer.get(t);
    if (node && SCORE_OPS.has(node.opType)) queue.push(...node.inputs.filter((i) => i && !g.sources.has(i)));
  }
  return false;
}

interface LayerMatch {
  q: string;
  k: string;
  v: string;
  pastKey: string;
  pastValue: string;
  presentKey: string;
  presentValue: string;
  /** The [B, S, heads * D] attention output that o_proj reads, and the Reshape that makes it. */
  out: string;
  replaced: OnnxNode[];
}

function matchLayer(g: Graph, layer: number): LayerMatch | string {
  const pastKey = `past_key_values.${layer}.key`;
  const pastValue = `past_key_values.${layer}.value`;
  const presentKey = `present.${layer}.key`;
  const presentValue = `present.${layer}.value`;
  const concat = (present: string, past: string) => {
    const node = g.producer.get(present);
    const axis = node?.ints.get('axis')?.[0];
    return node?.opType === 'Concat' && node.inputs.length === 2 && node.inputs[0] === past && (axis === 2 || axis === -2) ? node : undefined;
  };
  const keyConcat = concat(presentKey, pastKey);
  const valueConcat = concat(presentValue, pastValue);
  if (!keyConcat || !valueConcat) return `layer ${layer}: ${presentKey}/${presentValue} are not a Concat of the past and the new step`;
  const k = projectionBehind(g, keyConcat.inputs[1]);
  const vSplit = g.producer.get(valueConcat.inputs[1]);
  const v = vSplit && isPerm(vSplit, [0, 2, 1, 3]) && g.producer.get(vSplit.inputs[0])?.opType === 'Reshape'
    ? g.producer.get(vSplit.inputs[0])!.inputs[0]
    : undefined;
  if (!k || !v) return `layer ${layer}: no head split of the key or value projection`;
  const scores = matmulAhead(g, presentKey);
  const mixed = matmulAhead(g, presentValue);
  if (!scores || !mixed) return `layer ${layer}: the cache does not feed exactly one QKᵀ and one ·V MatMul`;
  const q = projectionBehind(g, scores.inputs[0]);
  if (!q || q === k) return `layer ${layer}: no head split of the query projection`;
  if (!reachesBack(g, mixed.inputs[0], scores.outputs[0])) return `layer ${layer}: ·V does not read softmax(QKᵀ)`;
  // Back to [B, S, heads * D]: Transpose/Reshape only, each the single consumer of the previous.
  let out = mixed.outputs[0];
  let last: OnnxNode | undefined;
  let transposed = false;
  for (;;) {
    const next = g.consumers.get(out);
    if (next?.length !== 1 || !(next[0].opType === 'Reshape' || next[0].opType === 'Transpose') || g.outputs.has(out)) break;
    last = next[0];
    transposed ||= last.opType === 'Transpose';
    out = last.outputs[0];
  }
  if (!last || last.opType !== 'Reshape' || !transposed) return `layer ${layer}: the attention output is not transposed and reshaped back`;
  return { q, k, v, pastKey, pastValue, presentKey, presentValue, out, replaced: [keyConcat, valueConcat, last] };
}

/** Node and tensor writers. */
export function nodeBytes(
  opType: string, inputs: string[], outputs: string[], ints: Record<string, number | number[]> = {}, domain = '', prefix = PREFIX,
): Uint8Array {
  const w = new ProtoWriter();
  for (const i of inputs) w.string(NODE_INPUT, i);
  for (const o of outputs) w.string(NODE_OUTPUT, o);
  w.string(NODE_NAME, `${prefix}${opType}_${outputs[0].replace(prefix, '')}`);
  w.string(NODE_OP_TYPE, opType);
  for (const [name, value] of Object.entries(ints)) {
    w.message(NODE_ATTRIBUTE, (a) => {
      a.string(ATTR_NAME, name);
      if (Array.isArray(value)) a.packedVarints(ATTR_INTS, value).varint(ATTR_TYPE, ATTR_TYPE_INTS);
      else a.varint(ATTR_I, value).varint(ATTR_TYPE, ATTR_TYPE_INT);
    });
  }
  if (domain) w.string(NODE_DOMAIN, domain);
  return w.finish();
}

export function tensorBytes(name: string, dataType: number, dims: number[], raw: Uint8Array): Uint8Array {
  return new ProtoWriter().packedVarints(1, dims).varint(2, dataType).string(TENSOR_NAME, name).bytes(9, raw).finish();
}

const int64Raw = (values: number[]) => new Uint8Array(BigInt64Array.from(values, BigInt).buffer);
const floatRaw = (values: Float32Array | number[]) => new Uint8Array(Float32Array.from(values).buffer);

/** The rotary tables GQA reads: cos/sin of position × inv_freq, [maxPositions, headDim / 2]. */
export function rotaryTables(shape: AttentionShape): { cos: Float32Array; sin: Float32Array } {
  const half = shape.headDim / 2;
  const cos = new Float32Array(shape.maxPositions * half);
  const sin = new Float32Array(shape.maxPositions * half);
  for (let i = 0; i < half; i++) {
    // As transformers computes inv_freq: in float32, from an integer arange.
    const invFreq = Math.fround(1 / Math.pow(shape.ropeTheta, (2 * i) / shape.headDim));
    for (let p = 0; p < shape.maxPositions; p++) {
      const angle = Math.fround(p * invFreq);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Tensors the GQA nodes share, computed once from `attention_mask` and `input_ids`. */
function prologue(shape: AttentionShape): { nodes: Uint8Array[]; initializers: Uint8Array[] } {
  const t = (name: string) => PREFIX + name;
  const { cos, sin } = rotaryTables(shape);
  const initializers = [
    tensorBytes(t('one'), INT64, [], int64Raw([1])),
    tensorBytes(t('idx0'), INT64, [1], int64Raw([0])),
    tensorBytes(t('idx1'), INT64, [1], int64Raw([1])),
    tensorBytes(t('axes12'), INT64, [2], int64Raw([1, 2])),
    tensorBytes(t('ones2'), INT64, [2], int64Raw([1, 1])),
    tensorBytes(t('zero_f'), FLOAT, [], floatRaw([0])),
    tensorBytes(t('masked_f'), FLOAT, [], floatRaw([MASKED])),
    tensorBytes(t('cos'), FLOAT, [shape.maxPositions, shape.headDim / 2], floatRaw(cos)),
    tensorBytes(t('sin'), FLOAT, [shape.maxPositions, shape.headDim / 2], floatRaw(sin)),
  ];
  const nodes = [
    nodeBytes('Shape', ['attention_mask'], [t('mask_shape')]),
    nodeBytes('Gather', [t('mask_shape'), t('idx1')], [t('total_1d')], { axis: 0 }),
    nodeBytes('Gather', [t('mask_shape'), t('idx0')], [t('batch_1d')], { axis: 0 }),
    nodeBytes('Sub', [t('total_1d'), t('one')], [t('last_1d')]),
    nodeBytes('Expand', [t('last_1d'), t('batch_1d')], [t('seqlens_64')]),
    // seqlens_k: every row is `total` long; padding is masked by the bias instead.
    nodeBytes('Cast', [t('seqlens_64')], [t('seqlens_k')], { to: INT32 }),
    nodeBytes('Cast', [t('total_1d')], [t('total_32_1d')], { to: INT32 }),
    nodeBytes('Squeeze', [t('total_32_1d')], [t('total')]),
    nodeBytes('Cast', ['attention_mask'], [t('mask_bool')], { to: BOOL }),
    nodeBytes('Where', [t('mask_bool'), t('zero_f'), t('masked_f')], [t('bias_2d')]),
    nodeBytes('Unsqueeze', [t('bias_2d'), t('axes12')], [t('bias_4d')]),
    nodeBytes('Shape', ['input_ids'], [t('ids_shape')]),
    nodeBytes('Gather', [t('ids_shape'), t('idx1')], [t('step_1d')], { axis: 0 }),
    nodeBytes('Concat', [t('ones2'), t('step_1d'), t('idx1')], [t('bias_shape')], { axis: 0 }),
    nodeBytes('Expand', [t('bias_4d'), t('bias_shape')], [t('bias')]),
  ];
  return { nodes, initializers };
}

/** The nodes still needed for the graph outputs. */
export function liveNodes(nodes: OnnxNode[], outputs: Set<string>): Set<OnnxNode> {
  const producer = new Map<string, OnnxNode>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  const live = new Set<OnnxNode>();
  const stack = [...outputs];
  while (stack.length) {
    const node = producer.get(stack.pop()!);
    if (!node || live.has(node)) continue;
    live.add(node);
    stack.push(...node.inputs.filter(Boolean));
  }
  return live;
}

/**
 * Rewrites every layer's attention into GroupQueryAttention, or returns why not. `model` is not
 * modified (the result copies the bytes it keeps).
 */
export function fuseAttention(model: Uint8Array, shape: AttentionShape): FusionResult {
  if (shape.headDim % GQA_HEAD_DIM_MULTIPLE !== 0) return { reason: `head size ${shape.headDim} is not a multiple of ${GQA_HEAD_DIM_MULTIPLE}` };
  if (shape.heads % shape.kvHeads !== 0) return { reason: `${shape.heads} heads do not group over ${shape.kvHeads} KV heads` };
  const parsed = parseModel(model);
  if (!parsed) return { reason: 'no graph' };
  const g = parsed.graph;
  if (g.nodes.some((n) => n.opType === 'GroupQueryAttention')) return { reason: 'the graph already uses GroupQueryAttention' };
  if (!g.inputs.has('position_ids') || !g.inputs.has('attention_mask')) return { reason: 'the graph has no position_ids or attention_mask input' };
  const layers = [...g.inputs].filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
  if (layers === 0) return { reason: 'no past_key_values inputs' };
  // The tables and the bias are written in float32, the type of the kernel's query and cache.
  if (g.inputTypes.get('past_key_values.0.key') !== FLOAT) return { reason: 'the KV cache is not float32' };

  const matches: LayerMatch[] = [];
  for (let layer = 0; layer < layers; layer++) {
    const m = matchLayer(g, layer);
    if (typeof m === 'string') return { reason: m };
    matches.push(m);
  }

  // New node list: the prologue first (it reads only graph inputs), each GQA node where the
  // Reshape it replaces was (after q/k/v, before o_proj), the replaced nodes dropped, then
  // everything no output needs any more (the old rotary, mask and repeat_kv subgraphs).
  const pro = prologue(shape);
  const gqaAt = new Map<OnnxNode, OnnxNode>();
  const replaced = new Set<OnnxNode>();
  for (const m of matches) {
    for (const n of m.replaced) replaced.add(n);
    const inputs = [...qkvInputs(g, m), m.pastKey, m.pastValue, `${PREFIX}seqlens_k`, `${PREFIX}total`, `${PREFIX}cos`, `${PREFIX}sin`, 'position_ids', `${PREFIX}bias`];
    const raw = nodeBytes('GroupQueryAttention', inputs, [m.out, m.presentKey, m.presentValue], { num_heads: shape.heads, kv_num_heads: shape.kvHeads, do_rotary: 1 }, 'com.microsoft');
    gqaAt.set(m.replaced[2], parseNode(raw));
  }
  const proNodes = pro.nodes.map(parseNode);
  const ordered: OnnxNode[] = [...proNodes];
  for (const n of g.nodes) {
    const gqa = gqaAt.get(n);
    if (gqa) ordered.push(gqa);
    else if (!replaced.has(n)) ordered.push(n);
  }
  const live = liveNodes(ordered, g.outputs);
  return { model: writeModel(parsed, ordered.filter((n) => live.has(n)), pro.initializers), layers };
}

/**
 * GroupQueryAttention's query, key and value inputs: the packed [B, S, (H + 2 KV) * D] projection
 * when q, k and v are the three outputs, in order, of one Split along the last axis (what the GGUF
 * importer writes for a packed QKV matmul; the Split then has no consumer left and is dropped), else
 * the three tensors. The Split's sizes need no check: the head splits reshape its outputs to H and
 * KV heads of size D, so any other sizes fail in the original graph as well.
 */
function qkvInputs(g: Graph, m: LayerMatch): string[] {
  const split = g.producer.get(m.q);
  const axis = split?.ints.get('axis')?.[0];
  const packed =
    split?.opType === 'Split' && (axis === -1 || axis === 2) && split.outputs.length === 3 &&
    split.outputs[0] === m.q && split.outputs[1] === m.k && split.outputs[2] === m.v;
  return packed ? [split.inputs[0], '', ''] : [m.q, m.k, m.v];
}

/** A model's top-level fields (raw) and its parsed graph. */
export interface ParsedModel {
  top: { field: number; raw: Uint8Array; bytes?: Uint8Array }[];
  graph: Graph;
}

export function parseModel(model: Uint8Array): ParsedModel | undefined {
  const top: ParsedModel['top'] = [];
  const reader = new ProtoReader(model);
  while (!reader.eof()) {
    const f = reader.next();
    top.push({ field: f.field, raw: model.subarray(f.start, reader.pos), bytes: f.bytes });
  }
  const graphField = top.find((f) => f.field === MODEL_GRAPH && f.bytes);
  return graphField ? { top, graph: parseGraph(graphField.bytes!) } : undefined;
}

/**
 * The model with its graph's nodes replaced by `kept` (encoded as they are) plus `initializers`.
 * Initializers and value_info that no kept node reads or computes any more are dropped, and the
 * com.microsoft opset is declared if it was not.
 */
export function writeModel(parsed: ParsedModel, kept: OnnxNode[], initializers: Uint8Array[]): Uint8Array {
  const g = parsed.graph;
  const computed = new Set(kept.flatMap((n) => n.outputs));
  const read = new Set(kept.flatMap((n) => n.inputs));
  const graph = new ProtoWriter();
  for (const n of kept) graph.bytes(GRAPH_NODE, n.raw);
  for (const f of g.rest) {
    // value_info of tensors that no longer exist would only confuse shape inference.
    if (f.field === GRAPH_VALUE_INFO && f.name && !computed.has(f.name)) continue;
    // Initializers of the replaced subgraphs; onnxruntime warns about each.
    if (f.field === GRAPH_INITIALIZER && f.name && !read.has(f.name) && !g.inputs.has(f.name) && !g.outputs.has(f.name)) continue;
    graph.raw(f.raw);
  }
  for (const t of initializers) graph.bytes(GRAPH_INITIALIZER, t);
  const out = new ProtoWriter();
  let written = false;
  for (const f of parsed.top) {
    if (f.field === MODEL_GRAPH && f.bytes && !written) {
      out.bytes(MODEL_GRAPH, graph.finish());
      written = true;
    } else out.raw(f.raw);
  }
  if (!parsed.top.some((f) => f.field === MODEL_OPSET && f.bytes && nameOf(f.bytes, OPSET_DOMAIN) === 'com.microsoft')) {
    out.message(MODEL_OPSET, (o) => o.string(OPSET_DOMAIN, 'com.microsoft').varint(2, 1));
  }
  return out.finish();
}
