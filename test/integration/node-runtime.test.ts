/**
 * createNodeRuntime in-process on the shared models: golden token ids on the tiny random Llama
 * (fp32 and fp16 must agree), its Llama-2 chat template, the q4 file, batching, KV reuse and
 * decode lookahead on stories260K.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime, type NodeRuntime } from '../../src/adapters/node/runtime.js';
import type { GenerateRequest, GenerationEvent } from '../../src/runtime/types.js';
import { requireBuild } from '../helpers/cli-server.js';
import { sharedModel, STORIES, TINY_RANDOM } from '../helpers/shared-models.js';

const tiny = sharedModel(TINY_RANDOM);
const stories = sharedModel(STORIES);

// Greedy ids for "Hello, my name is" (6 prompt tokens with BOS), pinned from the fp32 file.
const GOLDEN_IDS = [4598, 25148, 18190, 28667, 18975, 29267, 6471, 29077, 8575, 15605, 10668, 21336];

async function run(runtime: NodeRuntime, request: Partial<GenerateRequest>) {
  const events: GenerationEvent[] = [];
  const full = { input: { kind: 'text', text: 'Hello, my name is' }, sampling: { temperature: 0 }, stop: [], ignoreEos: false, n: 1, ...request } as GenerateRequest;
  for await (const event of runtime.generate(full)) events.push(event);
  const tokens = events.flatMap((e) => (e.type === 'delta' ? e.tokens : []));
  const text = events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
  return { events, tokens, text };
}

describe.skipIf(!tiny)('tiny random Llama (real Llama-2 tokenizer)', () => {
  const runtimes: Partial<Record<'fp32' | 'fp16', NodeRuntime>> = {};
  beforeAll(async () => {
    requireBuild();
    for (const dtype of ['fp32', 'fp16'] as const) runtimes[dtype] = await createNodeRuntime({ model: tiny!, dtype, device: 'cpu', log: () => {} });
  });
  afterAll(async () => {
    for (const runtime of Object.values(runtimes)) await runtime?.close();
  });

  it.each(['fp32', 'fp16'] as const)('%s greedy output is the pinned token ids with exact usage', async (dtype) => {
    const { tokens, events } = await run(runtimes[dtype]!, { maxTokens: 12 });
    expect(tokens).toEqual(GOLDEN_IDS);
    expect(events[0]).toMatchObject({ type: 'start', promptTokens: 6 });
    expect(events.at(-1)).toEqual({ type: 'usage', promptTokens: 6, completionTokens: 12 });
    expect(events.at(-2)).toEqual({ type: 'finish', index: 0, reason: 'length' });
  });

  it.each(['fp32', 'fp16'] as const)('%s: batched requests give the same ids as alone', async (dtype) => {
    const prompts = ['Hello, my name is', 'The capital of France', 'Once', '1 2 3 4 5 6 7 8'];
    const solo = [];
    for (const text of prompts) solo.push((await run(runtimes[dtype]!, { input: { kind: 'text', text }, maxTokens: 10 })).tokens);
    const together = await Promise.all(prompts.map((text) => run(runtimes[dtype]!, { input: { kind: 'text', text }, maxTokens: 10 })));
    expect(together.map((r) => r.tokens)).toEqual(solo);
  });

  it('renders the Llama-2 chat template from tokenizer_config.json', async () => {
    const tokens = await runtimes.fp32!.tokenize(undefined, { kind: 'messages', messages: [{ role: 'user', content: 'Hi' }] });
    // <s> [INST] Hi [/INST]
    expect(tokens[0]).toBe(1);
    expect(runtimes.fp32!.models()[0]).toMatchObject({ id: TINY_RANDOM, contextLength: 2048, embeddingSize: 16 });
  });

  it('embeds from the hidden state (length = hidden size 16), deterministic', async () => {
    const a = await runtimes.fp32!.embed({ input: ['Hello world!', 'Hello world!'] });
    expect(a.embeddings[0]).toHaveLength(16);
    expect(Array.from(a.embeddings[0])).toEqual(Array.from(a.embeddings[1]));
    const b = await runtimes.fp16!.embed({ input: ['Hello world!'] });
    Array.from(b.embeddings[0]).forEach((x, i) => expect(x).toBeCloseTo(a.embeddings[0][i], 2));
  });
});

describe.skipIf(!stories)('stories260K quantized files', () => {
  it('loads the q4 (MatMulNBits) and q8 files and generates', async () => {
    for (const dtype of ['q4', 'q8'] as const) {
      const runtime = await createNodeRuntime({ model: stories!, dtype, device: 'cpu', log: () => {} });
      const { text } = await run(runtime, { input: { kind: 'text', text: 'Once upon a time' }, maxTokens: 20 });
      expect(runtime.loadInfo.dtype).toBe(dtype);
      expect(text).toMatch(/^, there was/);
      await runtime.close();
    }
  });
});

describe.skipIf(!stories)('batched decoding on stories260K (fp32)', () => {
  const prompts = ['Once upon a time', 'Lily and Ben', 'The sun was', 'One day', 'Tom had a', 'She saw a big', 'The little dog', 'Mom said'];

  it('gives every request of a batch the same tokens as alone, in batched steps, and frees every sequence', async () => {
    // No prefix cache: every request prefills in full, and no sequence outlives its request.
    const runtime = await createNodeRuntime({ model: stories!, dtype: 'fp32', device: 'cpu', maxConcurrent: 8, cacheMaxBytes: 0, log: () => {} });
    try {
      const solo = [];
      for (const text of prompts) solo.push((await run(runtime, { input: { kind: 'text', text }, maxTokens: 40 })).tokens);
      const before = await runtime.backendStats();
      const together = await Promise.all(prompts.map((text) => run(runtime, { input: { kind: 'text', text }, maxTokens: 40 })));
      const after = await runtime.backendStats();
      expect(together.map((r) => r.tokens)).toEqual(solo);
      // All eight joined in the same step: decode calls carried several rows each.
      const calls = after.decodeCalls - before.decodeCalls;
      const rows = after.decodeRows - before.decodeRows;
      expect(rows / calls).toBeGreaterThan(4);
      expect(after.liveSequences).toBe(0);
    } finally {
      await runtime.close();
    }
  });

  it('keeps n > 1 and beam search exact while sharing the batch', async () => {
    const runtime = await createNodeRuntime({ model: stories!, dtype: 'fp32', device: 'cpu', cacheMaxBytes: 0, log: () => {} });
    try {
      const alone = await run(runtime, { input: { kind: 'text', text: 'Once upon a time' }, maxTokens: 20, sampling: { numBeams: 3 } });
      const [beams, sampled] = await Promise.all([
        run(runtime, { input: { kind: 'text', text: 'Once upon a time' }, maxTokens: 20, sampling: { numBeams: 3 } }),
        run(runtime, { input: { kind: 'text', text: 'One day' }, maxTokens: 20, n: 3, sampling: { temperature: 0 } }),
      ]);
      expect(beams.tokens).toEqual(alone.tokens);
      const perChoice = [0, 1, 2].map((i) => sampled.events.flatMap((e) => (e.type === 'delta' && e.index === i ? e.tokens : [])));
      expect(perChoice[1]).toEqual(perChoice[0]);
      expect(perChoice[2]).toEqual(perChoice[0]);
      expect((await runtime.backendStats()).liveSequences).toBe(0);
    } finally {
      await runtime.close();
    }
  });
});

describe.skipIf(!stories)('KV reuse on stories260K (fp32)', () => {
  it('ten /generate turns give the same tokens with the cache as without, prefilling only the new tokens', async () => {
    const turns = ['Once upon a time', 'Then', 'The dog', 'She said', 'They went', 'One day', 'The end', 'Lily', 'Ben', 'Mom'];
    const transcripts: number[][][] = [];
    const prefilled: number[] = [];
    for (const cacheMaxBytes of [0, 64 * 1024 * 1024]) {
      // Drafted steps (prompt lookup) also count as prefill tokens: off, so only the turns' own tokens count.
      const runtime = await createNodeRuntime({ model: stories!, dtype: 'fp32', device: 'cpu', cacheMaxBytes, promptLookup: 0, log: () => {} });
      const before = await runtime.backendStats();
      const transcript: number[][] = [];
      for (const [i, text] of turns.entries()) {
        const { tokens } = await run(runtime, { input: { kind: 'text', text }, maxTokens: 12, session: { id: '1', start: i === 0, end: false } });
        transcript.push(tokens);
      }
      prefilled.push((await runtime.backendStats()).prefillTokens - before.prefillTokens);
      transcripts.push(transcript);
      await runtime.close();
    }
    console.log(`prefill tokens over ${turns.length} turns: ${prefilled[0]} without reuse, ${prefilled[1]} with`);
    expect(transcripts[1]).toEqual(transcripts[0]);
    // Without reuse each turn re-reads the whole history; with it, only what is new.
    expect(prefilled[1] * 4).toBeLessThan(prefilled[0]);
  });
});

describe.skipIf(!stories)('chunked prefill on stories260K (fp32)', () => {
  it('gives the same tokens as a one-piece prefill', async () => {
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.';
    const outputs = [];
    for (const prefillChunk of [4096, 7]) {
      const runtime = await createNodeRuntime({ model: stories!, dtype: 'fp32', device: 'cpu', cacheMaxBytes: 0, prefillChunk, log: () => {} });
      outputs.push((await run(runtime, { input: { kind: 'text', text }, maxTokens: 20 })).tokens);
      await runtime.close();
    }
    expect(outputs[1]).toEqual(outputs[0]);
  });
});

describe.skipIf(!stories)('decode lookahead through the worker on stories260K (fp32)', () => {
  it('starts greedy steps early (on by default), gives the same tokens as without, and leaves sampling alone', async () => {
    const prompts = ['Once upon a time', 'Lily and Ben', 'The sun was'];
    const results = [];
    // First with the default (on unless EDGELLM_LOOKAHEAD=0), then turned off.
    for (const lookahead of [undefined, false]) {
      const runtime = await createNodeRuntime({ model: stories!, dtype: 'fp32', device: 'cpu', cacheMaxBytes: 0, lookahead, promptLookup: 0, log: () => {} });
      try {
        const greedy = await Promise.all(prompts.map((text) => run(runtime, { input: { kind: 'text', text }, maxTokens: 24 })));
        const afterGreedy = await runtime.backendStats();
        await run(runtime, { input: { kind: 'text', text: 'One day' }, maxTokens: 24, sampling: { temperature: 0.8, seed: 7 } });
        const afterSampled = await runtime.backendStats();
        results.push({ tokens: greedy.map((r) => r.tokens), afterGreedy, afterSampled });
      } finally {
        await runtime.close();
      }
    }
    const [on, off] = results;
    expect(on.tokens).toEqual(off.tokens);
    // Three streams of 24 tokens: nearly every batched step after the first was started early.
    expect(on.afterGreedy.lookaheadHits).toBeGreaterThan(15);
    expect(off.afterGreedy.lookaheadHits + off.afterGreedy.lookaheadMisses).toBe(0);
    // A sampled request makes no promise, so nothing is started early for it.
    expect(on.afterSampled.lookaheadHits + on.afterSampled.lookaheadMisses).toBe(on.afterGreedy.lookaheadHits + on.afterGreedy.lookaheadMisses);
  });
});
