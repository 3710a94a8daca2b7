/**
 * The GGUF decoder graph through onnxruntime-node against the plain-loop reference forward pass,
 * for tiny random models of each architecture and weight form: a prefill on an empty cache, then
 * a multi-token step on that cache, every position's logits compared. Also: the GroupQueryAttention
 * rewrite applies to the built graph and its probe accepts it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCausalLM } from '../../src/adapters/node/ort-model.js';
import { buildDecoderInMemory, describeMapping, type DecoderBuildOptions } from '../../src/onnx/gguf-decoder-graph.js';
import { fuseAttention, parseModel } from '../../src/onnx/onnx-attention-fusion.js';
import { floatActivations, int8MatMulNBits } from '../../src/onnx/onnx-int8-matmul.js';
import { referenceLogits, tinyGguf, tinyModel, type TinyGgufTypes, type TinyModel, type TinyQuant } from '../helpers/gguf-reference.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function writeModel(model: TinyModel, options?: DecoderBuildOptions) {
  const built = buildDecoderInMemory(model.spec, model.tensors, model.codec, options);
  const dir = mkdtempSync(join(tmpdir(), 'edgellm-gguf-graph-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'model.onnx'), built.model);
  writeFileSync(join(dir, built.dataName), built.data);
  return { path: join(dir, 'model.onnx'), built };
}

/** Runs `steps` (token lists) one after another on one sequence; returns every position's logits. */
async function runSteps(path: string, model: TinyModel, steps: number[][], keep?: number): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  const { layers, kvHeads, headDim } = model.spec;
  let past: ort.Tensor[] = [];
  for (let l = 0; l < layers; l++) for (let i = 0; i < 2; i++) past.push(new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]));
  let length = 0;
  const rows: Float32Array[] = [];
  try {
    for (const tokens of steps) {
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, tokens.length]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(length + tokens.length).fill(1n), [1, length + tokens.length]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, (_, i) => BigInt(length + i)), [1, tokens.length]),
        logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(BigInt(keep ?? tokens.length)), [1]), // default: every position's logits
      };
      for (let l = 0; l < layers; l++) {
        feeds[`past_key_values.${l}.key`] = past[2 * l];
        feeds[`past_key_values.${l}.value`] = past[2 * l + 1];
      }
      const out = await session.run(feeds);
      const logits = out.logits.data as Float32Array;
      const positions = Number(out.logits.dims[1]);
      const vocab = logits.length / positions;
      for (let s = 0; s < positions; s++) rows.push(logits.slice(s * vocab, (s + 1) * vocab));
      past = [];
      for (let l = 0; l < layers; l++) past.push(out[`present.${l}.key`], out[`present.${l}.value`]);
      length += tokens.length;
    }
  } finally {
    await session.release();
  }
  return rows;
}

function maxDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): { max: number; scale: number } {
  let max = 0;
  let scale = 0;
  a.forEach((row, r) => {
    for (let i = 0; i < row.length; i++) {
      max = Math.max(max, Math.abs(row[i] - b[r][i]));
      scale = Math.max(scale, Math.abs(b[r][i]));
    }
  });
  return { max, scale };
}

const PROMPT = [3, 17, 42, 5, 88, 61];
const STEP = [9, 33, 70];

describe.each([
  ['llama', 'F32'],
  ['llama', 'Q4+offsets'],
  ['llama', 'Q8'],
  ['qwen2', 'Q4'],
  ['qwen2', 'F32'],
  ['qwen3', 'Q4+offsets'],
  ['qwen3', 'Q8'],
] as const)('GGUF decoder graph: %s, %s weights', (architecture, quant: TinyQuant) => {
  const model = tinyModel(architecture, quant, { tied: quant !== 'Q8' });
  const reference = referenceLogits(model.spec, model.tensors, model.codec, [...PROMPT, ...STEP]);

  it('matches the reference forward pass over a prefill and a multi-token step on its cache', async () => {
    // Exact weights with float32 compute (4-bit level 0); 8-bit weights also at level 0 here, so the
    // comparison is tight: only float32 rounding is left.
    const { path, built } = writeModel(model, { accuracyLevel8: 0 });
    const got = await runSteps(path, model, [PROMPT, STEP]);
    const { max, scale } = maxDiff(got, reference);
    expect(scale).toBeGreaterThan(1); // non-degenerate logits
    expect(max).toBeLessThan(2e-4 * scale + 1e-4);
    const lines = describeMapping(built.mapping).join('\n');
    if (quant !== 'F32') expect(lines).toMatch(/MatMulNBits.*\(exact\)/);
    expect(lines).not.toMatch(/unused|dequantized/);
  });

  it('logits_to_keep: 1 gives the last position of each call and leaves the cache as it was', async () => {
    const { path } = writeModel(model, { accuracyLevel8: 0 });
    const all = await runSteps(path, model, [PROMPT, STEP, [7]]);
    const last = await runSteps(path, model, [PROMPT, STEP, [7]], 1);
    const want = [all[PROMPT.length - 1], all[PROMPT.length + STEP.length - 1], all[all.length - 1]];
    expect(last).toHaveLength(3);
    // The LM head of one row rounds as a decode step's does, not as the same row inside a many-row matmul.
    const { max, scale } = maxDiff(last, want);
    expect(max).toBeLessThan(1e-5 * scale + 1e-6);
    // A one-token step on the same cache gets the same head either way: the cache is unchanged.
    expect(last[2]).toEqual(want[2]);
  });

  it('with int8 activations (accuracy level 4) stays close and keeps the argmax', async () => {
    if (quant === 'F32') return;
    const { path } = writeModel(model, { accuracyLevel4: 4, accuracyLevel8: 4 });
    const got = await runSteps(path, model, [PROMPT, STEP]);
    const { max, scale } = maxDiff(got, reference);
    expect(max).toBeLessThan(0.05 * scale);
  });

  it('fp32: every weight dequantized gives the same logits', async () => {
    if (quant === 'F32') return;
    const { path, built } = writeModel(model, { dtype: 'fp32' });
    const got = await runSteps(path, model, [PROMPT, STEP]);
    const { max, scale } = maxDiff(got, reference);
    expect(max).toBeLessThan(2e-4 * scale + 1e-4);
    expect(describeMapping(built.mapping).join('\n')).not.toMatch(/MatMulNBits/);
  });
});

describe.each([
  ['llama', { weights: 'Q4_0' }],
  ['llama', { weights: 'Q4_1', embedding: 'Q8_0' }],
  ['llama', { weights: 'Q4_K', embedding: 'Q6_K', down: 'Q6_K' }],
  ['llama', { weights: 'Q5_K', embedding: 'Q4_K' }],
  ['qwen2', { weights: 'Q5_0', embedding: 'Q5_1' }],
  ['qwen2', { weights: 'Q8_0', embedding: 'F16' }],
  ['qwen3', { weights: 'Q5_1', embedding: 'Q4_1' }],
  ['qwen3', { weights: 'F16', embedding: 'BF16' }],
  ['qwen3', { weights: 'BF16', embedding: 'Q4_0' }],
  ['gemma3', { weights: 'Q4_K', embedding: 'Q6_K', down: 'Q8_0' }],
  ['gemma3', { weights: 'F32' }],
  // Mixed types: v with offsets beside q/k without (packed, zero offsets for q/k); gate and up of different bits (not packed).
  ['llama', { weights: 'Q4_0', value: 'Q4_1', up: 'Q8_0' }],
  // Q4_K_M-style: v and down in Q6_K (block 16) beside Q4_K (block 32): q/k/v not packed, gate/up packed.
  ['qwen2', { weights: 'Q4_K', value: 'Q6_K', down: 'Q6_K' }],
] as [string, TinyGgufTypes][])('GGUF file %s %o', (architecture, types) => {
  it('the graph of the file read back matches the reference forward pass (prefill, then a step on its cache)', async () => {
    const model = tinyGguf(architecture as TinyModel['spec']['architecture'], types, { tied: types.weights !== 'Q5_K' });
    const reference = referenceLogits(model.spec, model.tensors, model.codec, [...PROMPT, ...STEP]);
    const { path, built } = writeModel(model, { accuracyLevel8: 0 });
    const got = await runSteps(path, model, [PROMPT, STEP]);
    const { max, scale } = maxDiff(got, reference);
    expect(scale).toBeGreaterThan(1);
    expect(max).toBeLessThan(2e-4 * scale + 1e-4);
    const lines = describeMapping(built.mapping).join('\n');
    expect(lines).not.toMatch(/unused|dequantized/);
    for (const type of new Set([types.weights, types.embedding, types.down, types.value, types.up].filter((t) => t && !t.startsWith('F') && t !== 'BF16'))) {
      expect(lines).toContain(`${type} -> `);
      expect(lines).not.toContain(`${type} -> float32`);
    }
  });
});

describe('GGUF decoder graph in the engine\'s loader', () => {
  it.each(['llama', 'qwen2', 'qwen3'] as const)('%s: the GroupQueryAttention rewrite applies and its probe accepts it', async (architecture) => {
    const model = tinyModel(architecture, 'Q4+offsets');
    const { path } = writeModel(model);
    const lm = await loadCausalLM({
      path, executionProviders: ['cpu'], threads: 1, contextLength: 256, hiddenSize: model.spec.hidden,
      attention: { heads: 4, kvHeads: 2, headDim: 16, ropeTheta: model.spec.ropeTheta, maxPositions: 256 },
    });
    try {
      expect(lm.attention).toMatch(/^GroupQueryAttention \(2 layers/);
      const [last] = await lm.forward([{ seq: 1, tokens: PROMPT }]);
      const reference = referenceLogits(model.spec, model.tensors, model.codec, PROMPT);
      const { max, scale } = maxDiff([last], [reference[PROMPT.length - 1]]);
      expect(max).toBeLessThan(2e-3 * scale);
    } finally {
      await lm.dispose();
    }
  });
});

describe('GGUF decoder graph with int8 activations: row-invariant steps', () => {
  it.each(['llama', 'qwen2'] as const)('%s: multi-token steps equal single steps bit for bit; the GroupQueryAttention rewrite (not so) is turned down', async (architecture) => {
    const model = tinyModel(architecture, 'Q4+offsets');
    const { path } = writeModel(model, { accuracyLevel4: 4, accuracyLevel8: 4 });
    // The graph as built: a 4-token step on a cache against the same tokens one at a time, and a whole prefill.
    const steps = [PROMPT.slice(0, 3), ...PROMPT.slice(3).map((t) => [t])];
    const stepped = await runSteps(path, model, [PROMPT.slice(0, 3), PROMPT.slice(3)]);
    expect(await runSteps(path, model, steps)).toEqual(stepped);
    expect(await runSteps(path, model, [PROMPT])).toEqual(stepped);
    const lm = await loadCausalLM({
      path, executionProviders: ['cpu'], threads: 1, contextLength: 256, hiddenSize: model.spec.hidden,
      attention: { heads: 4, kvHeads: 2, headDim: 16, ropeTheta: model.spec.ropeTheta, maxPositions: 256 },
    });
    try {
      expect(lm.info.rowInvariant).toBe(true);
      expect(lm.verdict.rowInvariant).toBe(true);
      expect(lm.attention).toMatch(/^exported graph \(the GroupQueryAttention rewrite was rejected: its multi-token steps round differently/);
    } finally {
      await lm.dispose();
    }
  });

  it('is not asked of a graph with float activations', async () => {
    const model = tinyModel('llama', 'Q4+offsets');
    const { path } = writeModel(model, { accuracyLevel4: 0, accuracyLevel8: 0 });
    const lm = await loadCausalLM({ path, executionProviders: ['cpu'], threads: 1, contextLength: 256, hiddenSize: model.spec.hidden });
    try {
      expect(lm.info.rowInvariant).toBeUndefined();
      expect(lm.verdict.rowInvariant).toBe(false);
    } finally {
      await lm.dispose();
    }
  });
});

describe('floatActivations: the load probe\'s float reference of a graph with int8 activations', () => {
  it('gives the logits of the same weights built with float activations, bit for bit', async () => {
    const model = tinyModel('llama', 'Q4+offsets');
    const int8 = buildDecoderInMemory(model.spec, model.tensors, model.codec, { accuracyLevel4: 4, accuracyLevel8: 4 });
    expect(int8MatMulNBits(int8.model)).toBeGreaterThan(1);
    const dir = mkdtempSync(join(tmpdir(), 'edgellm-gguf-graph-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'model.onnx'), floatActivations(int8.model));
    writeFileSync(join(dir, int8.dataName), int8.data);
    expect(int8MatMulNBits(floatActivations(int8.model))).toBe(0);
    const { path: floatPath } = writeModel(model, { accuracyLevel4: 0, accuracyLevel8: 0 });
    const { path: int8Path } = writeModel(model, { accuracyLevel4: 4, accuracyLevel8: 4 });
    const want = await runSteps(floatPath, model, [PROMPT, STEP]);
    expect(await runSteps(join(dir, 'model.onnx'), model, [PROMPT, STEP])).toEqual(want);
    expect(await runSteps(int8Path, model, [PROMPT, STEP])).not.toEqual(want); // int8 activations do round
  });
});

describe('GGUF decoder graph: projections of one input share one MatMulNBits', () => {
  const opCounts = (model: Uint8Array) => {
    const counts = new Map<string, number>();
    for (const node of parseModel(model)!.graph.nodes) counts.set(node.opType, (counts.get(node.opType) ?? 0) + 1);
    return counts;
  };

  it('q/k/v and gate/up are packed (one offsets MatMul each); the attention rewrite feeds GroupQueryAttention the packed QKV', () => {
    const model = tinyGguf('llama', { weights: 'Q4_1', embedding: 'Q8_0' }, { tied: true });
    const { built } = writeModel(model);
    const counts = opCounts(built.model);
    // Per layer: qkv, o, gate_up, down; plus the tied head.
    expect(counts.get('MatMulNBits')).toBe(4 * model.spec.layers + 1);
    expect(counts.get('MatMul')).toBe(4 * model.spec.layers + 2 * model.spec.layers); // offsets; QKᵀ and ·V
    expect(counts.get('Split')).toBe(2 * model.spec.layers); // qkv, gate_up
    expect(counts.get('RotaryEmbedding')).toBe(2 * model.spec.layers); // q and k
    expect(counts.get('Expand')).toBeUndefined(); // grouped query heads, no copy of the KV heads
    const fused = fuseAttention(built.model, { heads: 4, kvHeads: 2, headDim: 64, ropeTheta: model.spec.ropeTheta, maxPositions: 64 });
    if (!('model' in fused)) throw new Error(fused.reason);
    const g = parseModel(fused.model)!.graph;
    const gqa = g.nodes.filter((n) => n.opType === 'GroupQueryAttention');
    expect(gqa).toHaveLength(model.spec.layers);
    for (const node of gqa) {
      expect(node.inputs.slice(1, 3)).toEqual(['', '']); // key and value come packed in the query input
      expect(g.producer.get(node.inputs[0])?.opType).toBe('Add'); // the packed MatMulNBits plus its block offsets
    }
    // Only the gate/up Splits are left, and no RotaryEmbedding (the rotary is GroupQueryAttention's now).
    expect(g.nodes.filter((n) => n.opType === 'Split')).toHaveLength(model.spec.layers);
    expect(g.nodes.filter((n) => n.opType === 'RotaryEmbedding')).toHaveLength(0);
  });

  it('projections whose block forms differ stay separate matmuls', () => {
    const model = tinyGguf('qwen2', { weights: 'Q4_K', value: 'Q6_K', up: 'Q8_0' }, { tied: true });
    const { built } = writeModel(model);
    // q, k, v, o, gate, up, down per layer, and the tied head.
    expect(opCounts(built.model).get('MatMulNBits')).toBe(7 * model.spec.layers + 1);
    expect(opCounts(built.model).get('Split')).toBeUndefined(); // nothing packed
    expect(opCounts(built.model).get('RotaryEmbedding')).toBe(2 * model.spec.layers);
  });
});
