/**
 * The int8 matmul rewrite as a graph transformation: what it matches and declines, and that the
 * packed 8-bit weights dequantize to exactly the original int8 weights times their scales.
 * Through onnxruntime: test/integration/int8-matmul.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModel, writeModel } from './onnx-attention-fusion.js';
import { decodeConstant, dynamicQuantizations, packInt8, rewriteInt8MatMuls, type Constant } from './onnx-int8-matmul.js';
import { GRAPH_INITIALIZER, GRAPH_OUTPUT, VALUE_INFO_NAME } from './onnx-proto.js';
import { ProtoReader, ProtoWriter } from './protobuf.js';

const fixture = () => new Uint8Array(readFileSync(new URL('../../test/fixtures/synthetic-llama-hd16/onnx/model_quantized.onnx', import.meta.url)));

/** Every initializer of a model, decoded where it is float, int8 or uint8. */
function constants(model: Uint8Array): Map<string, Constant> {
  const out = new Map<string, Constant>();
  for (const f of parseModel(model)!.graph.rest) {
    if (f.field !== GRAPH_INITIALIZER || !f.name) continue;
    const c = decodeConstant(new ProtoReader(f.raw).next().bytes!);
    if (c) out.set(f.name, c);
  }
  return out;
}

/** Dequantizes MatMulNBits' 8-bit B back into W [K, N]. */
function unpack(B: Uint8Array, scales: Float32Array, zeros: Uint8Array | undefined, K: number, N: number, block: number): Float32Array {
  const blocks = Math.ceil(K / block);
  const w = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / block);
      const zp = zeros ? zeros[n * blocks + b] : 128;
      w[k * N + n] = (B[(n * blocks + b) * block + (k % block)] - zp) * scales[n * blocks + b];
    }
  }
  return w;
}

describe('packInt8', () => {
  it.each([
    ['int8, per-column scales, no zero point', { dims: [3, 2], type: 3, values: Int8Array.from([-128, 127, 0, -1, 5, 64]) }, [0.5, 0.25], undefined],
    ['int8, one scale, zero points per column', { dims: [3, 2], type: 3, values: Int8Array.from([-100, 100, 0, -1, 5, 64]) }, [0.1], Int8Array.from([3, -2])],
    ['uint8, one scale and zero point', { dims: [3, 2], type: 2, values: Uint8Array.from([0, 255, 128, 7, 9, 200]) }, [2], Uint8Array.from([128])],
  ])('%s: dequantizes to the same weights, K padded to the block', (_, weight, scale, zp) => {
    const zeroPoint = zp && { dims: [zp.length], type: zp instanceof Int8Array ? 3 : 2, values: zp };
    const p = packInt8({ weight: weight as Constant, scale: Float32Array.from(scale), zeroPoint }, 16);
    expect([p.K, p.N, p.blocks, p.weights.length]).toEqual([3, 2, 1, 32]);
    const expected = Array.from(weight.values, (q, i) => {
      const n = i % 2;
      const z = zp ? zp[zp.length === 1 ? 0 : n] : 0;
      return (q - z) * scale[scale.length === 1 ? 0 : n];
    });
    expect(Array.from(unpack(p.weights, p.scales, p.zeros, 3, 2, 16))).toEqual(expected.map(Math.fround));
    // Padding past K holds the zero point: it dequantizes to 0.
    expect(p.weights[3]).toBe(p.zeros ? p.zeros[0] : 128);
    expect(p.zeros === undefined).toBe(zp === undefined || (weight.type === 2 && zp[0] === 128));
  });
});

describe('rewriteInt8MatMuls', () => {
  it('turns each DynamicQuantizeLinear + MatMulInteger of the Hub q8 form into one 8-bit MatMulNBits', () => {
    const original = fixture();
    expect(dynamicQuantizations(original)).toBeGreaterThan(0);
    const result = rewriteInt8MatMuls(original, { accuracyLevel: 4 });
    if ('reason' in result) throw new Error(result.reason);
    expect(result).toMatchObject({ rewritten: 15, remaining: 0 });
    const ops = parseModel(result.model)!.graph.nodes.map((n) => n.opType);
    expect(ops.filter((o) => o === 'MatMulNBits')).toHaveLength(15);
    for (const gone of ['DynamicQuantizeLinear', 'MatMulInteger']) expect(ops).not.toContain(gone);
    expect(dynamicQuantizations(result.model)).toBe(0);

    // Each new node's weights are the MatMulInteger's int8 weights times their scales, exactly.
    const before = parseModel(original)!.graph;
    const after = parseModel(result.model)!.graph;
    const oldConst = constants(original);
    const newConst = constants(result.model);
    const nbits = after.nodes.filter((n) => n.opType === 'MatMulNBits');
    for (const node of nbits) {
      const [K, N, bits, block, level] = ['K', 'N', 'bits', 'block_size', 'accuracy_level'].map((a) => node.ints.get(a)![0]);
      expect([bits, block, level]).toEqual([8, 32, 4]);
      // The old path to the same output: Mul(Cast(MatMulInteger(DQL(x), W)), Mul(xs, ws)).
      const mul = before.producer.get(node.outputs[0])!;
      const cast = before.producer.get(mul.inputs[0])!;
      const mm = before.producer.get(cast.inputs[0])!;
      const scaleMul = before.producer.get(mul.inputs[1])!;
      expect(before.producer.get(mm.inputs[0])!.inputs[0]).toBe(node.inputs[0]);
      const w = oldConst.get(mm.inputs[1])!;
      const ws = oldConst.get(scaleMul.inputs[1])!.values;
      expect(w.dims).toEqual([K, N]);
      const unpacked = unpack(newConst.get(node.inputs[1])!.values as Uint8Array, newConst.get(node.inputs[2])!.values as Float32Array, undefined, K, N, 32);
      const expected = Float32Array.from(w.values, (q, i) => q * ws[ws.length === 1 ? 0 : i % N]);
      expect(unpacked).toEqual(expected);
    }
    // The int8 weights are gone, not kept beside the packed ones.
    expect([...newConst.keys()].filter((name) => name.endsWith('_quantized') && !name.startsWith('model.embed_tokens'))).toEqual([]);
  });

  it('declines a graph without dynamic int8 matmuls', () => {
    const fp32 = new Uint8Array(readFileSync(new URL('../../test/fixtures/synthetic-llama-hd16/onnx/model.onnx', import.meta.url)));
    expect(rewriteInt8MatMuls(fp32, { accuracyLevel: 4 })).toEqual({ reason: 'no dynamic int8 matmuls', remaining: 0 });
  });

  it('leaves a quantized matmul whose output feeds something unexpected, and counts what is left', () => {
    // One MatMulInteger's Cast output becomes a graph output as well: that matmul cannot go.
    const parsed = parseModel(fixture())!;
    const g = parsed.graph;
    const mm = g.nodes.find((n) => n.opType === 'MatMulInteger')!;
    const cast = g.consumers.get(mm.outputs[0])![0].outputs[0];
    const valueInfo = new ProtoWriter().string(VALUE_INFO_NAME, cast).finish();
    g.rest.push({ field: GRAPH_OUTPUT, raw: new ProtoWriter().bytes(GRAPH_OUTPUT, valueInfo).finish(), name: cast });
    const model = writeModel(parsed, g.nodes, []);
    const result = rewriteInt8MatMuls(model, { accuracyLevel: 4 });
    expect(result).toMatchObject({ rewritten: 14, remaining: 1 });
  });
});
