/**
 * Load-time rewrite of the Hub's dynamic q8 matmuls (onnxruntime `quantize_dynamic`):
 * `DynamicQuantizeLinear(x)` -> `MatMulInteger(xq, W, xz, wz)` -> `Cast` -> `Mul(·, Mul(xs, ws))`
 * becomes one 8-bit `com.microsoft.MatMulNBits` with the same int8 weights. The exported form
 * quantizes activations with one scale for the whole input tensor, so a row's result depends on
 * the other rows of the call: on batch neighbours, and on whether a prompt was prefilled whole
 * or after a prefix-cache hit. MatMulNBits with `accuracy_level` 4 quantizes them per block of
 * one row (int8 compute, fast), never across rows; level 0 keeps them in float32 (onnxruntime
 * 1.30 runs 8-bit level 0 about 12x slower). Weight-only q8 (`DequantizeLinear` + `MatMul`) is
 * left alone: onnxruntime's optimizer already turns it into this same op.
 *
 * The weights, scales and zero points are carried over exactly (per-tensor or per-column
 * scales; a column's scale repeats over its blocks). Matching is structural; a matmul that does
 * not fit (external or non-2-D weights, an unexpected consumer) stays as it was, and `remaining`
 * counts the dynamic quantizations left. Callers compare the rewritten model's logits with the
 * same int8 weights in float (`form: 'dequantize'`) before using it (OrtCausalLM does).
 * @module
 */
import { liveNodes, nodeBytes, parseModel, tensorBytes, writeModel, type Graph } from './onnx-attention-fusion.js';
import { FLOAT, GRAPH_INITIALIZER, parseNode, type OnnxNode } from './onnx-proto.js';
import { ProtoReader } from './protobuf.js';

export interface Int8MatMulOptions {
  /** MatMulNBits accuracy_level: 4 = int8 activations per row block, 0 = float32 activations. */
  accuracyLevel: 0 | 4;
  /** Values per block along K (a power of two, at least 16). */
  blockSize?: number;
  /**
   * 'nbits' (default): 8-bit MatMulNBits. 'dequantize': the dynamic matmuls become
   * `DequantizeLinear(W) -> MatMul`, the same int8 weights with float activations, without
   * repacking anything: the load probe's exact reference (in a session with onnxruntime's QDQ
   * fusion off), which the MatMulNBits form must match within quantization noise.
   */
  form?: 'nbits' | 'dequantize';
}

export type Int8MatMulResult =
  | { model: Uint8Array; rewritten: number; remaining: number }
  | { reason: string; remaining: number };

const UINT8 = 2;
const INT8 = 3;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_INT32_DATA = 5;
const TENSOR_RAW_DATA = 9;
const TENSOR_DATA_LOCATION = 14;
const PREFIX = 'edgellm_q8/';

/** A constant tensor, decoded: int8/uint8 values as numbers, floats as float32. */
export interface Constant {
  dims: number[];
  type: number;
  values: Int8Array | Uint8Array | Float32Array;
}

/** Decodes an initializer (TensorProto) of type float, int8 or uint8; undefined for anything else. */
export function decodeConstant(bytes: Uint8Array): Constant | undefined {
  const dims: number[] = [];
  let type = 0;
  let raw: Uint8Array | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === TENSOR_DIMS) {
      if (f.value !== undefined) dims.push(f.value);
      else if (f.bytes) dims.push(...packed(f.bytes));
    } else if (f.field === TENSOR_DATA_TYPE) type = f.value ?? 0;
    else if (f.field === TENSOR_RAW_DATA) raw = f.bytes;
    else if (f.field === TENSOR_DATA_LOCATION && f.value === 1) return undefined; // external data
    else if (f.field === TENSOR_FLOAT_DATA) {
      if (f.bytes) floats.push(...new Float32Array(f.bytes.slice().buffer));
    } else if (f.field === TENSOR_INT32_DATA) {
      if (f.value !== undefined) ints.push(f.value | 0);
      else if (f.bytes) for (const v of packed(f.bytes)) ints.push(v | 0);
    }
  }
  const count = dims.reduce((a, b) => a * b, 1);
  let values: Constant['values'];
  if (type === FLOAT) values = raw ? new Float32Array(raw.slice().buffer) : Float32Array.from(floats);
  else if (type === INT8) values = raw ? new Int8Array(raw.slice().buffer) : Int8Array.from(ints);
  else if (type === UINT8) values = raw ? raw.slice() : Uint8Array.from(ints);
  else return undefined;
  return values.length === count ? { dims, type, values } : undefined;
}

/** Varints of a packed repeated field. */
function packed(bytes: Uint8Array): number[] {
  const reader = new ProtoReader(bytes);
  const out: number[] = [];
  while (!reader.eof()) out.push(reader.varint());
  return out;
}

/** A matmul to rewrite: y = x @ ((W - wz) * ws), W [K, N]. */
interface Match {
  x: string;
  y: string;
  weight: Constant;
  /** The initializer holding W (for the dequantize form). */
  weightName: string;
  /** Per column (length N) or one value. */
  scale: Float32Array;
  zeroPoint: Constant | undefined;
  /** The node that produces `y`: the new node goes where it was. */
  at: OnnxNode;
  replaced: OnnxNode[];
}

/** Packs W [K, N] (int8 or uint8) with its scale and zero point into MatMulNBits' 8-bit inputs. */
export function packInt8(m: Pick<Match, 'weight' | 'scale' | 'zeroPoint'>, blockSize: number) {
  const [K, N] = m.weight.dims;
  const blocks = Math.ceil(K / blockSize);
  const signed = m.weight.type === INT8;
  // MatMulNBits stores unsigned values; int8 w becomes w + 128 and its zero point z + 128.
  const offset = signed ? 128 : 0;
  const zp = (n: number) => (m.zeroPoint ? m.zeroPoint.values[m.zeroPoint.values.length === 1 ? 0 : n] : 0) + offset;
  const weights = new Uint8Array(N * blocks * blockSize);
  const scales = new Float32Array(N * blocks);
  const zeros = new Uint8Array(N * blocks);
  for (let n = 0; n < N; n++) {
    const s = m.scale[m.scale.length === 1 ? 0 : n];
    const z = zp(n);
    const base = n * blocks * blockSize;
    weights.fill(z, base, base + blocks * blockSize); // padding past K dequantizes to 0
    for (let k = 0; k < K; k++) weights[base + k] = m.weight.values[k * N + n] + offset;
    scales.fill(s, n * blocks, (n + 1) * blocks);
    zeros.fill(z, n * blocks, (n + 1) * blocks);
  }
  // 128 is MatMulNBits' implicit 8-bit zero point: omit the input when every block has it.
  const defaultZero = zeros.every((z) => z === 128);
  return { K, N, blocks, weights, scales, zeros: defaultZero ? undefined : zeros };
}

function matchDynamic(g: Graph, constants: Map<string, Constant>, quantize: OnnxNode): Match[] {
  const [xq, xs, xz] = quantize.outputs;
  const out: Match[] = [];
  for (const mm of g.consumers.get(xq) ?? []) {
    if (mm.opType !== 'MatMulInteger' || mm.inputs[0] !== xq || mm.inputs[2] !== xz) continue;
    const weight = constants.get(mm.inputs[1]);
    const zeroPoint = mm.inputs[3] ? constants.get(mm.inputs[3]) : undefined;
    if (!weight || weight.dims.length !== 2 || (mm.inputs[3] && !zeroPoint)) continue;
    const cast = single(g, mm.outputs[0]);
    if (cast?.opType !== 'Cast' || cast.ints.get('to')?.[0] !== FLOAT) continue;
    const mul = single(g, cast.outputs[0]);
    if (mul?.opType !== 'Mul') continue;
    const scaleTensor = mul.inputs[0] === cast.outputs[0] ? mul.inputs[1] : mul.inputs[0];
    const scaleMul = g.producer.get(scaleTensor);
    if (scaleMul?.opType !== 'Mul' || !scaleMul.inputs.includes(xs)) continue;
    const ws = constants.get(scaleMul.inputs[0] === xs ? scaleMul.inputs[1] : scaleMul.inputs[0]);
    if (!ws || ws.type !== FLOAT) continue;
    out.push({ x: quantize.inputs[0], y: mul.outputs[0], weight, weightName: mm.inputs[1], scale: ws.values as Float32Array, zeroPoint, at: mul, replaced: [mm, cast, mul] });
  }
  return out;
}

/** `DequantizeLinear(W, per-column scale and zero point) -> MatMul(x, ·)`, reading the original W. */
function dequantizeNodes(m: Match, name: string): { nodes: OnnxNode[]; initializers: Uint8Array[] } {
  const [, N] = m.weight.dims;
  const type = m.weight.type;
  const scales = Float32Array.from({ length: N }, (_, n) => m.scale[m.scale.length === 1 ? 0 : n]);
  const zp = (n: number) => (m.zeroPoint ? m.zeroPoint.values[m.zeroPoint.values.length === 1 ? 0 : n] : 0);
  const zeros = type === INT8 ? Int8Array.from({ length: N }, (_, n) => zp(n)) : Uint8Array.from({ length: N }, (_, n) => zp(n));
  const initializers = [
    tensorBytes(`${name}_scale`, FLOAT, [N], new Uint8Array(scales.buffer)),
    tensorBytes(`${name}_zero_point`, type, [N], new Uint8Array(zeros.buffer)),
  ];
  const weight = m.weightName;
  const nodes = [
    nodeBytes('DequantizeLinear', [weight, `${name}_scale`, `${name}_zero_point`], [`${name}_W`], { axis: 1 }, '', PREFIX),
    nodeBytes('MatMul', [m.x, `${name}_W`], [m.y], {}, '', PREFIX),
  ].map(parseNode);
  return { nodes, initializers };
}

/** The one node reading `tensor`, when it is not also a graph output. */
function single(g: Graph, tensor: string): OnnxNode | undefined {
  const list = g.consumers.get(tensor);
  return list?.length === 1 && !g.outputs.has(tensor) ? list[0] : undefined;
}

/** Rewrites every dynamic int8 matmul it can match into 8-bit MatMulNBits (or `form`), or returns why none. */
export function rewriteInt8MatMuls(model: Uint8Array, options: Int8MatMulOptions): Int8MatMulResult {
  const blockSize = options.blockSize ?? 32;
  const parsed = parseModel(model);
  if (!parsed) return { reason: 'no graph', remaining: 0 };
  const g = parsed.graph;
  const quantizers = g.nodes.filter((n) => n.opType === 'DynamicQuantizeLinear');
  const dequantize = options.form === 'dequantize';
  if (!quantizers.length) return { reason: 'no dynamic int8 matmuls', remaining: 0 };

  const wanted = new Set<string>();
  for (const q of quantizers) for (const mm of g.consumers.get(q.outputs[0]) ?? []) wanted.add(mm.inputs[1]).add(mm.inputs[3]);
  for (const node of g.nodes) if (node.opType === 'Mul') node.inputs.forEach((i) => wanted.add(i));
  const constants = new Map<string, Constant>();
  for (const f of g.rest) {
    if (f.field !== GRAPH_INITIALIZER || !f.name || !wanted.has(f.name)) continue;
    const c = decodeConstant(new ProtoReader(f.raw).next().bytes!);
    if (c) constants.set(f.name, c);
  }

  const matches = quantizers.flatMap((q) => matchDynamic(g, constants, q));
  const countLeft = (nodes: Iterable<OnnxNode>) => [...nodes].filter((n) => n.opType === 'DynamicQuantizeLinear').length;
  if (!matches.length) return { reason: 'no dynamic int8 matmul has the expected form', remaining: quantizers.length };

  const at = new Map<OnnxNode, OnnxNode>();
  const ordered: [OnnxNode, OnnxNode][] = [];
  const replaced = new Set<OnnxNode>();
  const initializers: Uint8Array[] = [];
  for (const [i, m] of matches.entries()) {
    for (const n of m.replaced) replaced.add(n);
    const name = `${PREFIX}${i}`;
    if (dequantize) {
      const dq = dequantizeNodes(m, name);
      initializers.push(...dq.initializers);
      at.set(m.at, dq.nodes[1]);
      ordered.push([m.at, dq.nodes[0]]);
      continue;
    }
    const p = packInt8(m, blockSize);
    initializers.push(tensorBytes(`${name}_B`, UINT8, [p.N, p.blocks, blockSize], p.weights));
    initializers.push(tensorBytes(`${name}_scales`, FLOAT, [p.N * p.blocks], new Uint8Array(p.scales.buffer)));
    const inputs = [m.x, `${name}_B`, `${name}_scales`];
    if (p.zeros) {
      initializers.push(tensorBytes(`${name}_zero_points`, UINT8, [p.N * p.blocks], p.zeros));
      inputs.push(`${name}_zero_points`);
    }
    const attrs = { K: p.K, N: p.N, bits: 8, block_size: blockSize, accuracy_level: options.accuracyLevel };
    at.set(m.at, parseNode(nodeBytes('MatMulNBits', inputs, [m.y], attrs, 'com.microsoft', PREFIX)));
  }
  const before = new Map(ordered);
  const nodes = g.nodes.flatMap((n) => (at.has(n) ? [...(before.has(n) ? [before.get(n)!] : []), at.get(n)!] : replaced.has(n) ? [] : [n]));
  const live = liveNodes(nodes, g.outputs);
  const kept = nodes.filter((n) => live.has(n));
  return { model: writeModel(parsed, kept, initializers), rewritten: matches.length, remaining: countLeft(kept) };
}

/** How many DynamicQuantizeLinear nodes the model's graph has (activations quantized per tensor). */
export function dynamicQuantizations(model: Uint8Array): number {
  const parsed = parseModel(model);
  return parsed ? parsed.graph.nodes.filter((n) => n.opType === 'DynamicQuantizeLinear').length : 0;
}

/**
 * Whether the graph may quantize activations: int8 matmuls of any form (dynamic, weight-only
 * DequantizeLinear, which onnxruntime fuses into int8 compute) or MatMulNBits with accuracy_level 4.
 */
export function quantizesActivations(model: Uint8Array): boolean {
  const parsed = parseModel(model);
  return !!parsed?.graph.nodes.some(
    (n) => ['DynamicQuantizeLinear', 'MatMulInteger', 'DequantizeLinear'].includes(n.opType) || (n.opType === 'MatMulNBits' && n.ints.get('accuracy_level')?.[0] === 4),
  );
}

/** Whether the graph has MatMulNBits nodes that compute with int8 activations (accuracy_level 4). */
export function int8Compute(model: Uint8Array): boolean {
  const parsed = parseModel(model);
  return !!parsed?.graph.nodes.some((n) => n.opType === 'MatMulNBits' && n.ints.get('accuracy_level')?.[0] === 4);
}

/** How many MatMulNBits nodes compute with int8 activations (accuracy_level 4). */
export function int8MatMulNBits(model: Uint8Array): number {
  const parsed = parseModel(model);
  return parsed ? parsed.graph.nodes.filter((n) => n.opType === 'MatMulNBits' && n.ints.get('accuracy_level')?.[0] === 4).length : 0;
}

/**
 * The same graph with float32 activations: every MatMulNBits at accuracy_level 4 set to 0, weights
 * untouched (the load probe's reference for a graph whose int8 activations amplify float rounding,
 * see OrtCausalLM). Slow for 8-bit weights, fine for a few probe calls.
 */
export function floatActivations(model: Uint8Array): Uint8Array {
  const parsed = parseModel(model);
  if (!parsed) return model;
  const nodes = parsed.graph.nodes.map((n) => {
    if (n.opType !== 'MatMulNBits' || n.ints.get('accuracy_level')?.[0] !== 4) return n;
    const ints = Object.fromEntries([...n.ints].map(([k, v]) => [k, k === 'accuracy_level' ? 0 : v.length === 1 ? v[0] : v]));
    return parseNode(nodeBytes('MatMulNBits', n.inputs, n.outputs, ints, 'com.microsoft', 'edgellm_f32/'));
  });
  return writeModel(parsed, nodes, []);
}
