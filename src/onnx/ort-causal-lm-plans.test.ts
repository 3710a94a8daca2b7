/**
 * The step plans OrtCausalLM picks at load, on a scripted onnxruntime session that can be told
 * to refuse a step shape: several tokens on a cache, or a batch of rows of different lengths.
 * Whatever the plan, `forward` must return what the graph computes for each sequence alone.
 */
import { describe, expect, it } from 'vitest';
import { argmax } from '../runtime/sampling/sample.js';
import { OrtCausalLM, type Ort } from './ort-causal-lm.js';

const VOCAB = 97;

class FakeTensor {
  constructor(
    readonly type: string,
    readonly data: Float32Array | BigInt64Array,
    readonly dims: number[],
  ) {}
  dispose(): void {}
}

interface Refusals {
  /** Throw on several new tokens over a non-empty cache (genai's attn_mask_reformat). */
  chunksOnPast?: boolean;
  /** Throw on a batch whose rows have different lengths. */
  unevenBatch?: boolean;
}

/**
 * One layer, one head of size 1: the cache holds the token ids themselves. The logits at each
 * position peak at (sum of the unmasked cached tokens and the new ones so far) mod VOCAB, so a
 * wrong mask, a lost token or a misplaced row changes the answer.
 */
class FakeSession {
  readonly inputNames = ['input_ids', 'attention_mask', 'position_ids', 'past_key_values.0.key', 'past_key_values.0.value'];
  readonly outputNames = ['logits', 'present.0.key', 'present.0.value'];
  readonly inputMetadata = [{ name: 'past_key_values.0.key', isTensor: true, type: 'float32', shape: ['batch', 1, 'past', 1] }];
  readonly outputMetadata = [{ name: 'logits', isTensor: true, type: 'float32', shape: ['batch', 'seq', VOCAB] }];
  readonly shapes: Array<{ batch: number; tokens: number; past: number }> = [];

  constructor(private readonly refuse: Refusals) {}

  async run(feeds: Record<string, FakeTensor>) {
    const [batch, tokens] = feeds.input_ids.dims;
    const past = feeds['past_key_values.0.key'].dims[2];
    const mask = feeds.attention_mask.data as BigInt64Array;
    const width = past + tokens;
    const lengths = Array.from({ length: batch }, (_, b) => mask.subarray(b * width, (b + 1) * width).reduce((n, x) => n + Number(x), 0));
    this.shapes.push({ batch, tokens, past });
    if (this.refuse.chunksOnPast && tokens > 1 && past > 0) throw new Error('no chunks on a cache');
    if (this.refuse.unevenBatch && new Set(lengths).size > 1) throw new Error('uneven batch');
    const pastData = feeds['past_key_values.0.key'].data as Float32Array;
    const ids = feeds.input_ids.data as BigInt64Array;
    const logits = new Float32Array(batch * tokens * VOCAB);
    const present = new Float32Array(batch * width);
    for (let b = 0; b < batch; b++) {
      let sum = 0;
      for (let p = 0; p < past; p++) {
        present[b * width + p] = pastData[b * past + p];
        if (mask[b * width + p] === 1n) sum += pastData[b * past + p];
      }
      for (let s = 0; s < tokens; s++) {
        const id = Number(ids[b * tokens + s]);
        present[b * width + past + s] = id;
        sum += id;
        logits[(b * tokens + s) * VOCAB + (sum % VOCAB)] = 1;
      }
    }
    const kv = new FakeTensor('float32', present, [batch, 1, width, 1]);
    return { logits: new FakeTensor('float32', logits, [batch, tokens, VOCAB]), 'present.0.key': kv, 'present.0.value': kv };
  }

  async release(): Promise<void> {}
}

async function load(refuse: Refusals = {}) {
  const session = new FakeSession(refuse);
  const ort = { Tensor: FakeTensor, InferenceSession: { create: async () => session } } as unknown as Ort;
  const model = await OrtCausalLM.create(ort, new Uint8Array(0), { name: 'fake', contextLength: 64, hiddenSize: 1, sessionOptions: {} });
  session.shapes.length = 0; // the probes' runs
  return { model, session };
}

/** Prefills two sequences of different lengths, continues one with several tokens, then decodes both together. */
async function exercise(model: OrtCausalLM): Promise<number[]> {
  const out: number[] = [];
  out.push(...(await model.forward([{ seq: 1, tokens: [5, 6, 7] }])).map(argmax));
  out.push(...(await model.forward([{ seq: 2, tokens: [9] }])).map(argmax));
  out.push(...(await model.forward([{ seq: 2, tokens: [10, 11, 12] }])).map(argmax));
  out.push(...(await model.forward([{ seq: 1, tokens: [3] }, { seq: 2, tokens: [4] }])).map(argmax));
  out.push(...(await model.forward([{ seq: 1, tokens: [8] }, { seq: 2, tokens: [1] }])).map(argmax));
  return out;
}
// Running sums: seq 1: 18, seq 2: 9, then 42; both decode: 21 and 46; then 29 and 47.
const EXPECTED = [18, 9, 42, 21, 46, 29, 47];

describe('step plans found at load', () => {
  it('a graph that takes every shape: any number of tokens, batched decodes', async () => {
    const { model, session } = await load();
    expect(model.steps).toBe('any number of tokens per step; decode steps batched; KV copied into a new present each step');
    expect(await exercise(model)).toEqual(EXPECTED);
    expect(session.shapes.some((s) => s.tokens === 3 && s.past === 1)).toBe(true);
    expect(session.shapes.filter((s) => s.batch === 2)).toHaveLength(2);
  });

  it('several tokens on a cache refused: one token per run after the first prefill', async () => {
    const { model, session } = await load({ chunksOnPast: true });
    expect(model.steps).toBe('prefill on an empty cache, then one token per step (2 tokens on a 1-token cache failed: no chunks on a cache); decode steps batched; KV copied into a new present each step');
    expect(await exercise(model)).toEqual(EXPECTED);
    expect(session.shapes.every((s) => s.tokens === 1 || s.past === 0)).toBe(true);
  });

  it('uneven batches refused in both layouts: one sequence per decode run', async () => {
    const { model, session } = await load({ unevenBatch: true });
    expect(model.steps).toBe(
      'any number of tokens per step; one sequence per decode run (left padding: the run failed: uneven batch; right padding: the run failed: uneven batch); KV copied into a new present each step',
    );
    expect(await exercise(model)).toEqual(EXPECTED);
    expect(session.shapes.every((s) => s.batch === 1)).toBe(true);
  });

  it('does not count the probes as traffic', async () => {
    const { model } = await load();
    expect(model.counters).toMatchObject({ decodeCalls: 0, decodeRows: 0, prefills: 0, prefillTokens: 0 });
  });
});
