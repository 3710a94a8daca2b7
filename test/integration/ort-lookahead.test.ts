/**
 * OrtCausalLM's lookahead (the next greedy decode step started before it is asked for) on
 * stories260K fp32: the same calls with and without it return bit-identical logits, whether the
 * early step is used or has to be dropped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCausalLM } from '../../src/adapters/node/ort-model.js';
import type { ForwardItem } from '../../src/runtime/backend.js';
import { argmaxAmong } from '../../src/runtime/sampling/sample.js';
import { Pair } from '../helpers/ort-pair.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const stories = sharedModel(STORIES);

const decode = (next: Map<number, number>, greedyNext = true): ForwardItem[] =>
  [...next].map(([seq, token]) => ({ seq, tokens: [token], greedyNext }));

/** Decodes `next`'s sequences greedily for `steps` steps, updating `next`. */
async function greedy(pair: Pair, next: Map<number, number>, steps: number): Promise<void> {
  for (let i = 0; i < steps; i++) {
    const tokens = await pair.forward(decode(next));
    [...next.keys()].forEach((seq, k) => next.set(seq, tokens[k]));
  }
}

describe.skipIf(!stories)('decode lookahead on stories260K (fp32)', () => {
  let pair: Pair;
  beforeAll(async () => {
    const load = (lookahead: boolean) =>
      loadCausalLM({ path: `${stories}/onnx/model.onnx`, executionProviders: ['cpu'], threads: 1, contextLength: 512, hiddenSize: 64, lookahead });
    // Without lookahead, and with it (`pair.other`); every result must match exactly.
    pair = new Pair(await load(false), await load(true));
  });
  afterAll(async () => {
    await pair?.dispose();
  });

  it('gives identical logits when the early step is used and when it is dropped', async () => {
    const { counters } = pair.other;
    const next = new Map<number, number>();
    next.set(1, (await pair.forward([{ seq: 1, tokens: [1, 403, 407, 261, 378] }]))[0]);
    next.set(2, (await pair.forward([{ seq: 2, tokens: [1, 365, 274] }]))[0]);

    // Greedy steps: each one after the first was already computed.
    await greedy(pair, next, 6);
    expect(counters).toMatchObject({ lookaheadHits: 5, lookaheadMisses: 0 });

    // The caller sends another token than the argmax: the early step is dropped.
    next.set(1, (next.get(1)! + 1) % 512);
    await greedy(pair, next, 2);
    expect(counters).toMatchObject({ lookaheadHits: 6, lookaheadMisses: 1 });

    // A sequence that leaves the batch (released) does not spoil the early step for the others.
    pair.release(2);
    next.delete(2);
    await greedy(pair, next, 2);
    expect(counters).toMatchObject({ lookaheadHits: 8, lookaheadMisses: 1 });

    // A fork settles the early step (dropped), then the batch grows to two rows.
    await pair.fork(1, 3);
    next.set(3, next.get(1)!);
    await greedy(pair, next, 3);
    expect(counters).toMatchObject({ lookaheadHits: 10, lookaheadMisses: 2 });

    // A prefill of a new sequence next to the batch's decodes: the early decode step is used.
    const [n1, n3, n4] = await pair.forward([...decode(next), { seq: 4, tokens: [1, 403] }]);
    expect(counters).toMatchObject({ lookaheadHits: 11, lookaheadMisses: 2 });
    next.set(1, n1).set(3, n3).set(4, n4);

    // Embeddings in between do not disturb it.
    await greedy(pair, next, 1);
    await pair.hidden([1, 403, 407]);
    await greedy(pair, next, 2);
    expect(counters).toMatchObject({ lookaheadHits: 13, lookaheadMisses: 2 });

    // One live sequence not asked for (a cached one, kept): the early step is dropped.
    const kept = next.get(4)!;
    next.delete(4);
    await greedy(pair, next, 2);
    expect(counters).toMatchObject({ lookaheadHits: 14, lookaheadMisses: 3 });

    // That sequence comes back with one token next to the early step: it runs on its own and the
    // early step is used (the model without lookahead batches all three, hence the tolerance).
    const [m1, m3] = await pair.forward([...decode(next), { seq: 4, tokens: [kept] }], 1e-4);
    expect(counters).toMatchObject({ lookaheadHits: 15, lookaheadMisses: 3 });
    next.set(1, m1).set(3, m3);

    // Reusing a batch sequence's prefix (a source item) drops the early step.
    await greedy(pair, next, 1);
    const [s1, s3] = await pair.forward([...decode(next), { seq: 5, tokens: [261], source: { seq: 1, length: 3 } }]);
    expect(counters).toMatchObject({ lookaheadHits: 15, lookaheadMisses: 4 });
    next.set(1, s1).set(3, s3);

    // Without the hint nothing is started early.
    await pair.forward(decode(next, false));
    await pair.forward(decode(next, false));
    expect(counters).toMatchObject({ lookaheadHits: 15, lookaheadMisses: 4 });
    expect(pair.other.liveSequences).toBe(pair.plain.liveSequences);
  });

  it('starts a constrained greedy row with the argmax among the tokens it allows (greedyAmong)', async () => {
    const { counters } = pair.other;
    const hits = counters.lookaheadHits;
    const misses = counters.lookaheadMisses;
    const odd = new Uint32Array(16).fill(0xaaaaaaaa); // a "constraint" allowing odd ids of the 512 only
    let token = (await pair.forward([{ seq: 9, tokens: [1, 403, 407, 261] }], 0, (row) => argmaxAmong(row, odd)))[0];
    const picked: number[] = [];
    for (let i = 0; i < 6; i++) {
      token = (await pair.forward([{ seq: 9, tokens: [token], greedyNext: true, greedyAmong: odd }], 0, (row) => argmaxAmong(row, odd)))[0];
      picked.push(token);
    }
    expect(picked.every((t) => t % 2 === 1)).toBe(true);
    expect(counters.lookaheadHits - hits).toBe(5);
    expect(counters.lookaheadMisses - misses).toBe(0);
  });
});
