/**
 * Hostile clients with big requests, on the real stack over loopback: a 4 MB prompt, a prompt
 * just under the character bound (tokenized in the tokenizer thread, then too long), and 64
 * long embeddings inputs, all while a stream runs and /health is polled. Nothing may stall the
 * event loop: /health and the stream keep answering.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { maxTokenChars } from '../../src/model/hf-tokenizer.js';
import { sharedModel, STORIES, TINY_RANDOM } from '../helpers/shared-models.js';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { json, pollHealth, readStream } from './hostile-server.js';

const SENTENCE = 'Once upon a time there was a little girl who liked to play in the park. ';

describe.each([
  { name: STORIES, dir: sharedModel(STORIES), embedRepeats: 4 },
  { name: TINY_RANDOM, dir: sharedModel(TINY_RANDOM), embedRepeats: 6 },
])('$name: big requests do not stall the server', ({ dir, embedRepeats }) => {
  let s: CliServer;
  let client: OpenAI;
  let model: { id: string; context: number };

  beforeAll(async () => {
    if (!dir) return;
    // The server in its own process (the real CLI), so the clients here do not share its event loop.
    // A body limit above 4 MB, so the prompt reaches the engine's own bound.
    s = await startCli([dir, '--dtype', 'fp32', '--device', 'cpu', '--instance_num', '4', '--max-body-bytes', String(8 * 1024 * 1024)]);
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const info = await (await fetch(`${s.url}/openapi.json`)).ok; // warm the connection pool
    expect(info).toBe(true);
    const listed = await client.models.list();
    model = { id: listed.data[0].id, context: JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')).max_position_embeddings };
  });
  afterAll(async () => {
    expect(await s?.stop()).toBe(s ? 0 : undefined);
  });

  it.skipIf(!dir)('answers /health and keeps streaming while a 4 MB prompt, a long prompt and 64 embeddings inputs are handled', async () => {
    // Bodies built before the clock starts: the client's own work must not count as the server's.
    const context = model.context;
    const fourMbBody = JSON.stringify({ prompt: 'x'.repeat(4 * 1024 * 1024), max_tokens: 1 });
    // Under the character bound but over the context: tokenized (off the event loop), then refused.
    const perToken = maxTokenChars(JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')))!;
    const chars = Math.floor(context * perToken * 0.95);
    const longBody = JSON.stringify({ prompt: SENTENCE.repeat(Math.ceil(chars / SENTENCE.length)).slice(0, chars), max_tokens: 1 });
    const inputs = Array.from({ length: 64 }, (_, i) => `${i} ${SENTENCE.repeat(embedRepeats)}`);
    const post = (body: string) => fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

    const health = pollHealth(s.url);
    // Streams back to back for as long as the hostile requests last.
    let hostileDone = false;
    const streamGaps: number[] = [];
    const streams = (async () => {
      do {
        const res = await fetch(`${s.url}/v1/completions`, json({ prompt: 'Once', max_tokens: 200, ignore_eos: true, stream: true, temperature: 0 }));
        expect(res.status).toBe(200);
        const { longestGapMs, text } = await readStream(res);
        expect(text).toContain('[DONE]');
        streamGaps.push(longestGapMs);
      } while (!hostileDone);
    })();

    const answersBefore = health.answers;
    const fourMb = post(fourMbBody);
    const long = Promise.all([1, 2, 3].map(() => post(longBody)));
    const embeddings = client.embeddings.create({ model: model.id, input: inputs });

    const [big, tooLong, vectors] = await Promise.all([fourMb, long, embeddings]);
    hostileDone = true;
    await streams;
    const healthStats = await health.stop();

    expect(big.status).toBe(400);
    expect((await big.json()).error).toMatchObject({ code: 'context_length_exceeded', param: 'prompt' });
    for (const res of tooLong) {
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('context_length_exceeded');
    }
    expect(vectors.data.length).toBe(64);
    expect(vectors.usage.prompt_tokens).toBeGreaterThan(64 * 40);
    // /health was answered while they were in flight, never after a pause of a second or more,
    // and the stream never paused that long either.
    expect(healthStats.statuses).toEqual(new Set([200]));
    expect(healthStats.answers).toBeGreaterThan(answersBefore);
    expect(healthStats.longestMs).toBeLessThan(1000);
    expect(Math.max(...streamGaps)).toBeLessThan(1000);
    expect(s.output()).not.toMatch(/internal error|engine error/);
    console.log(`[hostile] ${dir!.split('/').pop()}: longest /health wait ${healthStats.longestMs.toFixed(0)} ms, longest stream gap ${Math.max(...streamGaps).toFixed(0)} ms (noisy, shared machine)`);
  });
});
