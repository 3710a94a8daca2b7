/**
 * KV in place (OrtCausalLM's `kvInPlace`): on a graph with GroupQueryAttention, every path that
 * moves or reuses a cache must give the logits of the copying form, bit for bit: prefills on a
 * cache, batched decodes whose buffers must grow, the lookahead, forks out of a live batch (which
 * must not share the buffer the batch keeps writing), a cut back to a sequence's own prefix, and a
 * prefix copied into a new sequence.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCausalLM } from '../../src/adapters/node/ort-model.js';
import { modelShape } from '../../src/model/model-config.js';
import type { OrtCausalLM } from '../../src/onnx/ort-causal-lm.js';
import type { ForwardItem } from '../../src/runtime/backend.js';

const DIR = fileURLToPath(new URL('../fixtures/families/llama/', import.meta.url));
const json = (name: string) => JSON.parse(readFileSync(join(DIR, name), 'utf8'));

async function open(kvInPlace: boolean): Promise<OrtCausalLM> {
  const shape = modelShape(json('config.json'), json('generation_config.json'));
  return loadCausalLM({
    path: join(DIR, 'onnx', 'model.onnx'), executionProviders: ['cpu'], contextLength: shape.contextLength, hiddenSize: shape.hiddenSize,
    attention: typeof shape.attention === 'string' ? undefined : shape.attention, kvInPlace, lookahead: true,
  });
}

const argmax = (row: Float32Array) => row.reduce((best, x, i) => (x > row[best] ? i : best), 0);
const ids = (n: number, salt: number, vocab: number) => Array.from({ length: n }, (_, i) => (3 + i * 7 + salt * 11) % vocab);

/** One script of calls; returns every logits row it saw (copied). */
async function script(lm: OrtCausalLM): Promise<Float32Array[]> {
  const vocab = lm.info.vocabSize;
  const rows: Float32Array[] = [];
  const call = async (items: ForwardItem[]) => {
    const out = await lm.forward(items);
    rows.push(...out.map((row) => row.slice()));
    return out.map(argmax);
  };
  await call([{ seq: 1, tokens: ids(5, 1, vocab) }]);
  await call([{ seq: 2, tokens: ids(9, 2, vocab) }]);
  await call([{ seq: 3, tokens: ids(2, 3, vocab) }]);
  await call([{ seq: 1, tokens: ids(3, 4, vocab) }]); // a prefill on a cache
  // Batched greedy decoding, long enough that in-place buffers grow several times; the lookahead runs each step.
  let next = await call([1, 2, 3].map((seq, i) => ({ seq, tokens: [i + 1], greedyNext: true })));
  for (let step = 0; step < 80; step++) {
    next = await call([1, 2, 3].map((seq, i) => ({ seq, tokens: [next[i]], greedyNext: true })));
    if (step === 40) await lm.fork(2, 4); // out of the live batch, which keeps writing its buffers
  }
  await call([{ seq: 4, tokens: [5] }, { seq: 2, tokens: [6] }]);
  await call([{ seq: 1, tokens: ids(4, 5, vocab), source: { seq: 1, length: 20 } }]); // cut back to its own prefix, then extended
  await call([{ seq: 5, tokens: ids(6, 6, vocab), source: { seq: 2, length: 30 } }]); // a prefix copied into a new sequence
  await call([1, 2, 4, 5].map((seq) => ({ seq, tokens: [7] })));
  // A lone sequence decodes in its own buffer; a fork of it must not see the steps it takes afterwards.
  let lone = await call([{ seq: 6, tokens: ids(4, 7, vocab) }]);
  for (let step = 0; step < 5; step++) lone = await call([{ seq: 6, tokens: lone, greedyNext: true }]);
  await lm.fork(6, 7);
  for (let step = 0; step < 3; step++) lone = await call([{ seq: 6, tokens: lone, greedyNext: true }]);
  await call([{ seq: 7, tokens: [8] }]);
  await call([{ seq: 6, tokens: [9] }]);
  for (const seq of [1, 2, 3, 4, 5, 6, 7]) lm.release(seq);
  return rows;
}

describe('KV in place on a GroupQueryAttention graph', () => {
  const opened: OrtCausalLM[] = [];
  afterAll(async () => Promise.all(opened.map((lm) => lm.dispose())));

  it('gives the copying form\'s logits on every path that moves or reuses a cache', async () => {
    const inPlace = await open(true);
    const copying = await open(false);
    opened.push(inPlace, copying);
    expect(inPlace.steps).toMatch(/KV written in place/);
    expect(copying.steps).toMatch(/KV copied/);
    const want = await script(copying);
    const got = await script(inPlace);
    expect(got).toHaveLength(want.length);
    got.forEach((row, i) => expect(row, `row ${i}`).toEqual(want[i]));
    expect(inPlace.counters.lookaheadHits).toBeGreaterThan(70);
    expect(inPlace.liveSequences).toBe(0);
  }, 60_000);
});
