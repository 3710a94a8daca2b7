import { describe, expect, it } from 'vitest';
import { attempt, collect, makeEngine, MODEL, request, textOf } from '../../test/fixtures/fake-backend.js';
import { createDeferredRuntime } from './deferred-runtime.js';

describe('DeferredRuntime', () => {
  it('answers 503 with retry-after while loading', async () => {
    const runtime = createDeferredRuntime();
    expect(runtime.specificationVersion).toBe('v1');
    expect(runtime.status()).toBe('loading');
    expect(runtime.models()).toEqual([]);
    const loading = { status: 503, headers: { 'retry-after': '5' } };
    expect((await attempt(() => runtime.generate(request()))).error).toMatchObject(loading);
    await expect(runtime.embed({ input: ['one'] })).rejects.toMatchObject(loading);
    await expect(runtime.tokenize(undefined, { kind: 'text', text: 'one' })).rejects.toMatchObject(loading);
  });

  it('delegates everything once resolved', async () => {
    const runtime = createDeferredRuntime();
    const { engine, backend } = makeEngine();
    runtime.resolve(engine);
    expect(runtime.status()).toBe('ready');
    expect(runtime.models().map((m) => m.id)).toEqual([MODEL]);
    expect(textOf(await collect(() => runtime.generate(request({ prompt: 'one', maxTokens: 2 }))))).toBe(' two three');
    expect(await runtime.tokenize(undefined, { kind: 'text', text: 'one' })).toEqual(await engine.tokenize(undefined, { kind: 'text', text: 'one' }));
    expect((await runtime.embed({ input: ['one'] })).embeddings).toHaveLength(1);
    expect(backend.forwards.length).toBeGreaterThan(0);
    // Errors of the target pass through unchanged.
    expect((await attempt(() => runtime.generate(request({ model: 'nope' })))).error).toMatchObject({ status: 404 });
  });

  it("reports the target's status", async () => {
    const runtime = createDeferredRuntime();
    const { engine } = makeEngine();
    runtime.resolve(engine);
    await engine.close();
    expect(runtime.status()).toBe('closed');
  });

  it("is 'closed' after close, closes the target, and answers 503 without retry-after", async () => {
    const runtime = createDeferredRuntime();
    const { engine, backend } = makeEngine();
    runtime.resolve(engine);
    await runtime.close();
    expect(runtime.status()).toBe('closed');
    expect(backend.disposed).toBe(true);
    const { error } = await attempt(() => runtime.generate(request()));
    expect(error).toMatchObject({ status: 503 });
    expect((error as { headers: Record<string, string> }).headers['retry-after']).toBeUndefined();
    await expect(runtime.embed({ input: ['one'] })).rejects.toMatchObject({ status: 503 });
  });

  it('can close while still loading', async () => {
    const runtime = createDeferredRuntime();
    await runtime.close();
    expect(runtime.status()).toBe('closed');
    expect((await attempt(() => runtime.generate(request()))).error).toMatchObject({ status: 503 });
  });
});
