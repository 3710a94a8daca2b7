/**
 * The GroupQueryAttention rewrite as a graph transformation: what it matches, what it writes,
 * and what it declines. Numerical equivalence through onnxruntime is tested in
 * test/integration/attention-fusion.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildTinyLlamaOnnx } from '../../test/fixtures/tiny-llama.js';
import { fuseAttention, rotaryTables, type AttentionShape } from './onnx-attention-fusion.js';
import { ProtoReader, decodeString } from './protobuf.js';

const fixture = (name: string, file = 'model.onnx') =>
  new Uint8Array(readFileSync(new URL(`../../test/fixtures/${name}/onnx/${file}`, import.meta.url)));
const SHAPE: AttentionShape = { heads: 4, kvHeads: 2, headDim: 16, ropeTheta: 10000, maxPositions: 64 };

interface Summary {
  ops: string[];
  initializers: string[];
  opsets: string[];
  gqa: { inputs: string[]; outputs: string[] }[];
}

/** Op types, initializer names, opset domains and the GQA nodes' wiring of a model. */
function summarise(model: Uint8Array): Summary {
  const s: Summary = { ops: [], initializers: [], opsets: [], gqa: [] };
  for (const m of new ProtoReader(model).fields()) {
    if (m.field === 8 && m.bytes) for (const o of new ProtoReader(m.bytes).fields()) if (o.field === 1 && o.bytes) s.opsets.push(decodeString(o.bytes));
    if (m.field !== 7 || !m.bytes) continue;
    for (const g of new ProtoReader(m.bytes).fields()) {
      if (g.field === 5 && g.bytes) for (const t of new ProtoReader(g.bytes).fields()) if (t.field === 8 && t.bytes) s.initializers.push(decodeString(t.bytes));
      if (g.field !== 1 || !g.bytes) continue;
      const node = { op: '', inputs: [] as string[], outputs: [] as string[] };
      for (const f of new ProtoReader(g.bytes).fields()) {
        if (!f.bytes) continue;
        if (f.field === 1) node.inputs.push(decodeString(f.bytes));
        if (f.field === 2) node.outputs.push(decodeString(f.bytes));
        if (f.field === 4) node.op = decodeString(f.bytes);
      }
      s.ops.push(node.op);
      if (node.op === 'GroupQueryAttention') s.gqa.push({ inputs: node.inputs, outputs: node.outputs });
    }
  }
  return s;
}

const count = (ops: string[], op: string) => ops.filter((o) => o === op).length;

describe('fuseAttention', () => {
  it.each([
    ['synthetic-llama-hd16', 'model.onnx'],
    ['synthetic-llama-hd16', 'model_quantized.onnx'],
    ['synthetic-llama-hd16-grouped', 'model.onnx'],
  ])('replaces each layer of %s/%s with one GroupQueryAttention node', (name, file) => {
    const original = fixture(name, file);
    const before = summarise(original);
    const result = fuseAttention(original, SHAPE);
    if ('reason' in result) throw new Error(result.reason);
    expect(result.layers).toBe(2);
    const after = summarise(result.model);

    expect(after.gqa).toEqual([0, 1].map((i) => ({
      inputs: [
        expect.any(String), expect.any(String), expect.any(String),
        `past_key_values.${i}.key`, `past_key_values.${i}.value`,
        'edgellm_gqa/seqlens_k', 'edgellm_gqa/total', 'edgellm_gqa/cos', 'edgellm_gqa/sin', 'position_ids', 'edgellm_gqa/bias',
      ],
      outputs: [expect.any(String), `present.${i}.key`, `present.${i}.value`],
    })));
    // The decomposed attention is gone: softmax, the scores' mask, the rotary tables and the KV concat.
    expect(count(after.ops, 'Softmax')).toBe(0);
    expect(count(after.ops, 'Cos') + count(after.ops, 'Sin')).toBe(0);
    expect(count(after.ops, 'Neg')).toBe(0);
    expect(before.ops.length - after.ops.length).toBeGreaterThan(40);
    expect(after.initializers).not.toContain('rotary_emb.inv_freq');
    expect(after.initializers).toEqual(expect.arrayContaining(['edgellm_gqa/cos', 'edgellm_gqa/sin']));
    // The weights are all still there.
    for (const name of before.initializers.filter((n) => n.startsWith('model.'))) expect(after.initializers).toContain(name);
    expect(after.opsets).toContain('com.microsoft');
    // The query, key and value inputs are the three projections' outputs, in that order.
    expect(new Set(after.gqa.flatMap((n) => n.inputs.slice(0, 3))).size).toBe(6);
  });

  it('does not modify its input', () => {
    const original = fixture('synthetic-llama-hd16');
    const copy = original.slice();
    fuseAttention(original, SHAPE);
    expect(original).toEqual(copy);
  });

  it('declines head sizes the kernel rejects, and heads that do not group', () => {
    const model = fixture('synthetic-llama-hd16');
    expect(fuseAttention(model, { ...SHAPE, headDim: 8 })).toEqual({ reason: 'head size 8 is not a multiple of 16' });
    expect(fuseAttention(model, { ...SHAPE, heads: 3 })).toEqual({ reason: '3 heads do not group over 2 KV heads' });
  });

  it('declines a float16 cache (the tables and bias it writes are float32)', () => {
    // Flip past_key_values.0.key's declared elem_type from FLOAT (1) to FLOAT16 (10) in place.
    const model = fixture('synthetic-llama-hd16').slice();
    const name = new TextEncoder().encode('past_key_values.0.key');
    // The graph input: ValueInfoProto { name, type (0x12) { tensor_type (0x0a) { elem_type (0x08) ... } } }.
    const at = model.findIndex((_, i) => name.every((b, j) => model[i + j] === b) && model[i + name.length] === 0x12);
    const elem = at + name.length + 4;
    expect([model[elem - 2], model[elem], model[elem + 1]]).toEqual([0x0a, 0x08, 1]);
    model[elem + 1] = 10;
    expect(fuseAttention(model, SHAPE)).toEqual({ reason: 'the KV cache is not float32' });
  });

  it('declines a graph it has already rewritten', () => {
    const once = fuseAttention(fixture('synthetic-llama-hd16'), SHAPE);
    if ('reason' in once) throw new Error(once.reason);
    expect(fuseAttention(once.model, SHAPE)).toEqual({ reason: 'the graph already uses GroupQueryAttention' });
  });

  it('declines a decoder whose cache does not feed an attention', () => {
    // The counting fixture's present.* is Concat(past, Transpose(Reshape(hidden))), with no QKᵀ.
    const counting = buildTinyLlamaOnnx(2, [1, 2, 0]);
    const result = fuseAttention(counting, { heads: 4, kvHeads: 4, headDim: 16, ropeTheta: 10000, maxPositions: 64 });
    expect(result).toHaveProperty('reason');
    expect((result as { reason: string }).reason).toMatch(/^layer 0: /);
  });
});

describe('rotaryTables', () => {
  it('holds cos and sin of position x inverse frequency, [positions, head size / 2]', () => {
    const { cos, sin } = rotaryTables({ ...SHAPE, headDim: 4, ropeTheta: 100, maxPositions: 3 });
    expect(cos.length).toBe(6);
    // position 0: angle 0
    expect([cos[0], cos[1], sin[0], sin[1]]).toEqual([1, 1, 0, 0]);
    // position 2, pair 1: inverse frequency 100^(-2/4) = 0.1
    expect(cos[5]).toBeCloseTo(Math.cos(0.2), 6);
    expect(sin[5]).toBeCloseTo(Math.sin(0.2), 6);
    expect(sin[4]).toBeCloseTo(Math.sin(2), 6);
  });
});
