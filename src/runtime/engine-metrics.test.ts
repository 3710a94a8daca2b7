import { describe, expect, it } from 'vitest';
import { attempt, collect, makeEngine, request, settle, usageOf } from '../../test/fixtures/fake-backend.js';
import type { GenerationEvent } from './types.js';

const startOf = (events: GenerationEvent[]) => events.find((e): e is Extract<GenerationEvent, { type: 'start' }> => e.type === 'start')!;

describe('engine metrics', () => {
  it('counts prompt and generated tokens, outcomes, and times each request', async () => {
    const { engine } = makeEngine();
    const a = await collect(() => engine.generate(request({ prompt: 'one two', maxTokens: 3 })));
    const b = await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 2, n: 2, sampling: { temperature: 1, seed: 1 } })));
    await settle();
    const m = engine.metrics!()!;
    expect(m.model).toBe('fake-model');
    expect(m.promptTokens).toBe(usageOf(a)!.promptTokens + usageOf(b)!.promptTokens);
    expect(m.generationTokens).toBe(usageOf(a)!.completionTokens + usageOf(b)!.completionTokens);
    expect(m.requestsFinished).toEqual({ stop: 0, length: 2, tool_calls: 0, abort: 0, error: 0 });
    expect(m.timeToFirstToken.count).toBe(2);
    expect(m.e2eRequestLatency.count).toBe(2);
    expect(m.queueTime.count).toBe(2);
    // a: 3 tokens, 2 gaps; b: two choices of 2 tokens, one gap each.
    expect(m.interTokenLatency.count).toBe(4);
    expect(m).toMatchObject({ requestsRunning: 0, requestsWaiting: 0, kvCacheBytes: 0, kvCacheBudgetBytes: 0, sessionsOpen: 0 });
  });

  it('reports reused prompt tokens as cached on the start event and as prefix cache hits', async () => {
    const { engine } = makeEngine({ backend: { kvBytesPerToken: 8 }, engine: { cacheMaxBytes: 8000 } });
    const first = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 2 })));
    const second = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 2 })));
    await settle();
    expect(startOf(first).cachedTokens).toBe(0);
    expect(startOf(second).cachedTokens).toBe(3); // BOS one two: the last prompt token is always forwarded
    const m = engine.metrics!()!;
    expect(m.prefixCacheQueries).toBe(8);
    expect(m.prefixCacheHits).toBe(3);
    expect(m.kvCacheBudgetBytes).toBe(8000);
    expect(m.kvCacheKeptBytes).toBeGreaterThan(0);
    expect(m.kvCacheBytes).toBe(m.kvCacheKeptBytes); // nothing running
  });

  it('counts KV of running requests, sessions held, and a session turn reuses its history', async () => {
    const { engine, backend, tokenizer } = makeEngine({ backend: { kvBytesPerToken: 8, delayMs: 5 }, engine: { cacheMaxBytes: 8000 } });
    tokenizer.applyChatTemplate = (messages) => messages.map((m) => m.content).join(' ');
    const turn = (prompt: string, start: boolean) => collect(() => engine.generate(request({ prompt, maxTokens: 2, session: { id: 's', start, end: false } })));
    await turn('one', true);
    let seenRunning = 0;
    backend.beforeForward = () => {
      const m = engine.metrics!()!;
      if (m.requestsRunning > 0) seenRunning = Math.max(seenRunning, m.kvCacheBytes - m.kvCacheKeptBytes);
    };
    const second = await turn('four', false);
    expect(startOf(second).cachedTokens).toBeGreaterThan(0);
    expect(seenRunning).toBeGreaterThan(0);
    expect(engine.metrics!()!.sessionsOpen).toBe(1);
  });

  it('counts 429s as rejected, not as requests, and a cancelled request as abort', async () => {
    const { engine } = makeEngine({ backend: { delayMs: 5 }, engine: { maxConcurrent: 1, maxQueue: 0 } });
    const running = engine.generate(request({ prompt: 'one', maxTokens: 20, ignoreEos: true }))[Symbol.asyncIterator]();
    await running.next(); // start: it holds the only slot
    const refused = await attempt(() => engine.generate(request({ prompt: 'two three' })));
    expect((refused.error as { status: number }).status).toBe(429);
    await running.return!(undefined);
    await settle(20);
    const m = engine.metrics!()!;
    expect(m.requestsRejected).toBe(1);
    expect(m.promptTokens).toBe(2); // BOS one
    expect(m.requestsFinished).toEqual({ stop: 0, length: 0, tool_calls: 0, abort: 1, error: 0 });
  });

  it('counts a failed step as an error', async () => {
    const { engine, backend } = makeEngine();
    backend.failWhen = () => new Error('device lost');
    const result = await attempt(() => engine.generate(request({ prompt: 'one', maxTokens: 3 })));
    expect(result.error).toBeDefined();
    await settle();
    expect(engine.metrics!()!.requestsFinished.error).toBe(1);
  });
});
