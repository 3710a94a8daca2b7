import { describe, expect, it } from 'vitest';
import {
  attempt, collect, FakeEmbeddingBackend, makeEngine, request, settle, usageOf, VOCAB_SIZE,
} from '../../test/fixtures/fake-backend.js';
import { Scheduler } from './scheduler.js';
import { EmbedJob } from './embed-job.js';
import { FakeBackend } from '../../test/fixtures/fake-backend.js';

const words = (n: number) => Array.from({ length: n }, (_, i) => ['one', 'two', 'three'][i % 3]).join(' ');

describe('admission counts sequences, not requests', () => {
  it('refuses a request wider than --instance_num with a 400 naming n, and queues n by its sequences', async () => {
    const { engine, backend } = makeEngine({ backend: { delayMs: 5 }, engine: { maxConcurrent: 8, maxQueue: 8 } });
    const wide = await attempt(() => engine.generate(request({ prompt: 'one', n: 16, sampling: { temperature: 1 } })));
    expect(wide.error).toMatchObject({ status: 400, param: 'n', code: 'too_many_sequences' });

    // 8 running + 8 queued sequences: two n=8 requests fit, the third gets 429.
    const a = attempt(() => engine.generate(request({ prompt: 'one', n: 8, maxTokens: 4, sampling: { temperature: 1 } })));
    const b = attempt(() => engine.generate(request({ prompt: 'two', n: 8, maxTokens: 4, sampling: { temperature: 1 } })));
    const c = await attempt(() => engine.generate(request({ prompt: 'three', n: 1, maxTokens: 4 })));
    expect(c.error).toMatchObject({ status: 429, code: 'queue_full' });
    const [ra, rb] = await Promise.all([a, b]);
    expect(usageOf(ra.events)?.completionTokens).toBe(32);
    expect(usageOf(rb.events)?.completionTokens).toBe(32);
    // Never more than 8 sequences in one step, the KV budget --instance_num stands for.
    expect(backend.peakLive).toBeLessThanOrEqual(8);
    expect(Math.max(...backend.forwards.map((items) => items.length))).toBeLessThanOrEqual(8);
  });

  it('counts beams as sequences', async () => {
    const { engine } = makeEngine({ engine: { maxConcurrent: 4, maxQueue: 0 } });
    const r = await attempt(() => engine.generate(request({ prompt: 'one', sampling: { numBeams: 5 } })));
    expect(r.error).toMatchObject({ status: 400, code: 'too_many_sequences' });
  });

  it('says in Retry-After how long the queue really takes', async () => {
    let now = 0;
    const backend = new FakeBackend();
    const scheduler = new Scheduler(backend, { maxConcurrent: 1, maxQueue: 1, now: () => now });
    expect(scheduler.retryAfterSeconds()).toBe(1); // nothing measured yet
    // Jobs that each take 5 s (of the fake clock).
    const job = () => {
      let steps = 0;
      const j = {
        width: 1, done: false, cancelled: false,
        plan: () => [{ seq: 1, tokens: [3] }],
        advance: async () => {
          now += 2500;
          if (++steps === 2) j.done = true;
        },
        cancel: () => void (j.cancelled = true),
        dispose: () => {},
      };
      return j;
    };
    scheduler.submit({ job: job(), fail: () => {} });
    await settle();
    scheduler.submit({ job: job(), fail: () => {} });
    scheduler.submit({ job: job(), fail: () => {} });
    let error: unknown;
    try {
      scheduler.submit({ job: job(), fail: () => {} });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ status: 429, headers: { 'retry-after': '5' } });
    await settle(20);
  });
});

describe('bounded requests', () => {
  it('checks stop_token_ids: at most 256, each inside the vocabulary', async () => {
    const { engine } = makeEngine();
    const many = await attempt(() => engine.generate(request({ prompt: 'one', stopTokenIds: Array.from({ length: 400_000 }, () => 3) })));
    expect(many.error).toMatchObject({ status: 400, param: 'stopTokenIds' });
    const outside = await attempt(() => engine.generate(request({ prompt: 'one', stopTokenIds: [3, VOCAB_SIZE] })));
    expect(outside.error).toMatchObject({ status: 400, param: 'stopTokenIds' });
    expect((outside.error as Error).message).toContain(String(VOCAB_SIZE));
  });

  it('refuses a prompt longer than the context could hold without tokenizing it', async () => {
    const { engine, tokenizer } = makeEngine({ backend: { contextLength: 32 } });
    Object.assign(tokenizer, { maxTokenChars: 8 });
    const text = 'one '.repeat(100); // 400 characters > 32 tokens x 8
    const r = await attempt(() => engine.generate(request({ prompt: text })));
    expect(r.error).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'input' });
    const chat = await attempt(() => engine.generate(request({ input: { kind: 'messages', messages: [{ role: 'user', content: text }] } })));
    expect(chat.error).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'input' });
    await expect(engine.embed({ input: ['one', text] })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
    expect(tokenizer.encoded.some((e) => e.text.length >= 400)).toBe(false);
  });

  it('tokenizes long prompts with encodeAsync when the tokenizer has it, and gets the same tokens', async () => {
    const { engine, tokenizer } = makeEngine({ backend: { contextLength: 4096 } });
    const asyncTexts: string[] = [];
    Object.assign(tokenizer, {
      encodeAsync: async (text: string, special: boolean) => (asyncTexts.push(text), tokenizer.encode(text, special)),
    });
    const long = words(1500); // > 4096 characters
    const events = await collect(() => engine.generate(request({ prompt: long, maxTokens: 1 })));
    expect(asyncTexts).toEqual([long]);
    expect(events[0]).toMatchObject({ type: 'start', promptTokens: 1501 });
    await collect(() => engine.generate(request({ prompt: 'one two', maxTokens: 1 })));
    expect(asyncTexts.length).toBe(1); // short prompts stay synchronous

    // Many short embeddings inputs add up: past the same total they go off the event loop too.
    await engine.embed({ input: Array.from({ length: 64 }, () => words(30)) });
    expect(asyncTexts.length).toBe(65);
    await engine.embed({ input: ['one two', 'three'] });
    expect(asyncTexts.length).toBe(65);
  });
});

describe('embeddings share the scheduler', () => {
  it('interleave with a running stream, a few inputs per step', async () => {
    const { engine, backend } = makeEngine({ backend: { delayMs: 1 }, engine: { prefillChunk: 8 } });
    const stream = collect(() => engine.generate(request({ prompt: 'one', maxTokens: 20 })));
    await settle(3);
    const inputs = Array.from({ length: 12 }, () => words(6));
    const result = await engine.embed({ input: inputs });
    expect(result.embeddings.length).toBe(12);
    await stream;
    // One input (7 tokens, budget 8) per turn, with decode steps between the turns.
    const kinds = backend.calls.filter((c) => c.type === 'forward' || c.type === 'hiddenStates').map((c) => c.type[0]);
    const first = kinds.indexOf('h');
    const last = kinds.lastIndexOf('h');
    expect(kinds.filter((k) => k === 'h').length).toBe(12);
    expect(kinds.slice(first, last + 1).filter((k) => k === 'f').length).toBeGreaterThanOrEqual(10);
  });

  it('get 429 when the queue is full, and stop when their client goes away', async () => {
    const embedding = new FakeEmbeddingBackend();
    const slow = embedding.embed.bind(embedding);
    embedding.embed = async (inputs) => (await settle(2), slow(inputs));
    const { engine } = makeEngine({
      engine: { maxConcurrent: 1, maxQueue: 1, prefillChunk: 1, embedding: { backend: embedding, tokenizer: makeEngine().tokenizer, name: 'e', contextLength: 64 } },
    });
    const controller = new AbortController();
    const first = engine.embed({ input: Array.from({ length: 50 }, () => 'one two'), signal: controller.signal });
    const second = engine.embed({ input: ['one'] });
    await expect(engine.embed({ input: ['two'] })).rejects.toMatchObject({ status: 429 });
    await settle(10);
    controller.abort();
    await expect(first).rejects.toMatchObject({ status: 499 });
    const calls = embedding.calls.length;
    expect((await second).embeddings.length).toBe(1);
    await settle(10);
    expect(embedding.calls.length).toBeLessThanOrEqual(calls + 1);
    expect(calls).toBeLessThan(50);
  });

  it('an embed job fails alone when its backend call throws', async () => {
    const job = new EmbedJob([[1], [2]], async () => {
      throw new Error('boom');
    }, 8);
    const scheduler = new Scheduler(new FakeBackend(), { maxConcurrent: 2, maxQueue: 0 });
    scheduler.submit({ job, fail: (e) => job.fail(e) });
    await expect(job.result).rejects.toThrow('boom');
  });
});
