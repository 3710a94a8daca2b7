/**
 * Floods and wide requests on the real stack: an embeddings flood is queued or refused (429 with
 * Retry-After), never all admitted; `n` counts as that many sequences; a wide request that can
 * never run is a 400; the inference thread's death makes /health 503 and fails the requests in
 * flight cleanly.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedModel, STORIES, TINY_RANDOM } from '../helpers/shared-models.js';
import { json, startServer, type HostileServer } from './hostile-server.js';

const stories = sharedModel(STORIES);
const tiny = sharedModel(TINY_RANDOM);

describe.skipIf(!stories)('floods', () => {
  let s: HostileServer;
  let client: OpenAI;
  beforeAll(async () => {
    // Small prefill chunks: an embeddings request takes one step per input, so the flood overlaps.
    s = await startServer(stories!, { maxConcurrent: 4, maxQueue: 8, cacheMaxBytes: 0, prefillChunk: 16 });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => s?.close());

  it('40 concurrent embeddings requests: some queued, the rest 429 with Retry-After, no 5xx', async () => {
    const input = Array.from({ length: 8 }, (_, i) => `${i} Once upon a time there was a little girl who liked to play.`);
    // Each body read as it arrives: a client that leaves a response unread past the keep-alive
    // timeout loses the rest of it.
    const results = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const r = await fetch(`${s.url}/v1/embeddings`, json({ input }));
        return { status: r.status, headers: r.headers, body: await r.text() };
      }),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((x) => x === 200).length).toBeGreaterThanOrEqual(12); // 4 running + 8 queued at least
    expect(statuses.filter((x) => x === 429).length).toBeGreaterThan(0);
    expect(statuses.every((x) => x === 200 || x === 429)).toBe(true);
    for (const r of results.filter((x) => x.status === 429)) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(results.find((r) => r.status === 200)!.body).data.length).toBe(8);
    expect(s.errors).toEqual([]);
  });

  it('n counts as n sequences: n 16 over --instance_num 4 is a 400 naming n; n 4 requests queue by their width', async () => {
    const wide = await fetch(`${s.url}/v1/completions`, json({ prompt: 'Once', n: 16, max_tokens: 4 }));
    expect(wide.status).toBe(400);
    expect((await wide.json()).error).toMatchObject({ param: 'n', code: 'too_many_sequences' });

    // 4 running + 8 waiting sequences hold three n=4 requests; the fourth and later get 429.
    const body = { prompt: 'Once', n: 4, max_tokens: 100, ignore_eos: true, temperature: 1 };
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, (await s.runtime.backendStats()).liveSequences);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const r = await fetch(`${s.url}/v1/completions`, json(body));
        return { status: r.status, body: await r.json() };
      }),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429, 429]);
    for (const r of results.filter((x) => x.status === 200)) expect(r.body.choices.length).toBe(4);
    sampling = false;
    await sampler;
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(4);
    // Never more live sequences than --instance_num (the KV budget it stands for), and none left.
    expect((await s.runtime.backendStats()).liveSequences).toBe(0);
  });

  it('a list of prompts counts every prompt, and is bounded', async () => {
    const many = await client.completions.create({ model: s.runtime.models()[0].id, prompt: ['Once', 'Lily', 'The'], max_tokens: 3 });
    expect(many.choices.length).toBe(3);
    const tooMany = await fetch(`${s.url}/v1/completions`, json({ prompt: Array.from({ length: 65 }, () => 'x'), max_tokens: 1 }));
    expect(tooMany.status).toBe(400);
    expect((await tooMany.json()).error.param).toBe('prompt');
    const stopIds = await fetch(`${s.url}/v1/completions`, json({ prompt: 'Once', stop_token_ids: [1, 99999], max_tokens: 1 }));
    expect(stopIds.status).toBe(400);
    expect((await stopIds.json()).error).toMatchObject({ param: 'stop_token_ids', message: expect.stringContaining('99999') });
  });
});

describe.skipIf(!tiny)('a dead inference thread', () => {
  it('makes /health 503 and fails the requests in flight with a clean error', async () => {
    let fatal: Error | undefined;
    const s = await startServer(tiny!, { onFatal: (e) => (fatal = e) });
    try {
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
      const stream = await fetch(`${s.url}/v1/completions`, json({ prompt: 'Hello', max_tokens: 2000, ignore_eos: true, stream: true }));
      expect(stream.status).toBe(200);
      const reader = stream.body!.getReader();
      await reader.read(); // it is decoding
      expect(s.threads.length).toBe(1);
      await s.threads[0].terminate();

      let rest = '';
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      // The stream ended (with an error event or a cut), not hanging; the thread's death was reported once.
      expect(rest).not.toContain('"finish_reason":"length"');
      expect(fatal?.message).toMatch(/exited/);
      const health = await fetch(`${s.url}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toEqual({ status: 'failed' });
      const after = await fetch(`${s.url}/v1/completions`, json({ prompt: 'Hello', max_tokens: 2 }));
      expect(after.status).toBe(503);
      expect((await after.json()).error.code).toBe('backend_failed');
    } finally {
      await s.close();
    }
  });
});
