/**
 * The onnxruntime-genai style export (tiny-random Llama: MultiHeadAttention behind an
 * `attn_mask_reformat` subgraph that takes several tokens only on an empty cache) through the real
 * server: prefix reuse, sessions, chunked prefill, concurrent streams and beams must run without a
 * 5xx and give the greedy tokens of a server that prefills every prompt whole on an empty cache.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { until } from '../helpers/until.js';
import { sharedModel, TINY_RANDOM } from '../helpers/shared-models.js';

const dir = sharedModel(TINY_RANDOM);
const MODEL = TINY_RANDOM;

describe.skipIf(!dir)('genai-style export through the real server', () => {
  let server: CliServer;
  let reference: CliServer;
  const clients: OpenAI[] = [];
  const generate = async (target: CliServer, body: object) => {
    const response = await fetch(`${target.url}/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as { text: string; tokens: number; finish_reason: string };
  };
  /** Greedy completion text on the server under test and on the reference. */
  const both = async (body: Omit<OpenAI.CompletionCreateParamsNonStreaming, 'model'>) => {
    const [got, want] = await Promise.all(clients.map((c) => c.completions.create({ model: MODEL, temperature: 0, ...body })));
    return { got: got.choices.map((c) => c.text), want: want.choices.map((c) => c.text) };
  };

  beforeAll(async () => {
    [server, reference] = await Promise.all([
      startCli([dir!, '--dtype', 'fp32', '--prefill-chunk', '8']),
      startCli([dir!, '--dtype', 'fp32', '--cache-max-bytes', '0', '--prefill-chunk', '100000']),
    ]);
    for (const s of [server, reference]) clients.push(new OpenAI({ apiKey: 'unused', baseURL: `${s.url}/v1`, maxRetries: 0 }));
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), reference?.stop()]);
  });

  it('says its step plan at startup', async () => {
    await until(() => server.output().includes('steps:'));
    expect(server.output()).toMatch(/steps: prefill on an empty cache, then one token per step \(2 tokens on a 1-token cache failed: .*Expand/);
  });

  it('serves 20 prefix-sharing completions like a server without a cache', async () => {
    // Each prompt shares "Hello there friend, how are you" with the last and adds several tokens.
    const names = 'Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Zoe'.split(' ');
    for (const name of names) {
      const { got, want } = await both({ prompt: `Hello there friend, how are you ${name} today`, max_tokens: 6 });
      expect(got, name).toEqual(want);
    }
  });

  it('keeps a 10-turn /generate session equal to the reference', async () => {
    for (let turn = 0; turn < 10; turn++) {
      const body = { prompt: `turn ${turn}: tell me more`, session_id: 42, sequence_start: turn === 0, sequence_end: turn === 9, request_output_len: 5, temperature: 0 };
      const [got, want] = await Promise.all([generate(server, body), generate(reference, body)]);
      expect(got, `turn ${turn}`).toEqual(want);
      expect(got.tokens).toBe(5);
    }
  });

  it('prefills a prompt longer than --prefill-chunk in pieces', async () => {
    const prompt = 'The quick brown fox jumps over the lazy dog and then runs away into the forest'.repeat(2);
    const { got, want } = await both({ prompt, max_tokens: 8 });
    expect(got).toEqual(want);
  });

  it('runs 8 concurrent streams', async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => `Stream number ${i} says${' hello'.repeat(i)}`);
    const streamed = await Promise.all(
      prompts.map(async (prompt) => {
        let text = '';
        for await (const chunk of await clients[0].completions.create({ model: MODEL, prompt, max_tokens: 8, temperature: 0, stream: true })) text += chunk.choices[0]?.text ?? '';
        return text;
      }),
    );
    const { want } = await both({ prompt: prompts, max_tokens: 8 });
    expect(streamed).toEqual(want);
  });

  it('runs beam search on a cached prefix', async () => {
    const body = { prompt: 'Hello there friend, how are you my dear', max_tokens: 5, num_beams: 3 } as never;
    const { got, want } = await both(body);
    expect(got).toEqual(want);
  });

  it('returns logprob tokens that spell the text, with offsets into it', async () => {
    const completion = await clients[0].completions.create({ model: MODEL, prompt: 'Hello there', max_tokens: 12, temperature: 0, logprobs: 2 });
    const { text, logprobs } = completion.choices[0];
    expect(logprobs!.tokens!.join('')).toBe(text);
    logprobs!.tokens!.forEach((token, i) => expect(text.slice(logprobs!.text_offset![i]).startsWith(token)).toBe(true));
    const chat = await clients[0].chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = chat.choices[0].logprobs!.content!;
    expect(content.map((entry) => entry.token).join('')).toBe(chat.choices[0].message.content);
    expect(new TextDecoder().decode(new Uint8Array(content.flatMap((entry) => entry.bytes!)))).toBe(chat.choices[0].message.content);
  });

  it('answers client mistakes with a 4xx naming the field, and keeps serving', async () => {
    const mistakes: Array<[string, object, string | null]> = [
      ['/v1/completions', { prompt: [1, 32000] }, 'prompt'],
      ['/v1/completions', { prompt: 'Hi', max_tokens: 1_000_000 }, 'max_tokens'],
      ['/v1/completions', { prompt: 'word '.repeat(3000) }, 'prompt'],
      ['/v1/completions', { prompt: 'Hi', logit_bias: { 32000: 1 } }, 'logit_bias'],
      ['/v1/completions', { prompt: 'Hi', n: 2, num_beams: 2 }, 'n'],
      ['/v1/completions', { model: 'nope', prompt: 'Hi' }, 'model'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'word '.repeat(3000) }] }, 'messages'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_completion_tokens: 1_000_000 }, 'max_completion_tokens'],
      ['/v1/embeddings', { input: [[1, 32000]] }, 'input'],
      ['/generate', { prompt: 'word '.repeat(3000) }, 'prompt'],
      ['/generate', { prompt: 'Hi', request_output_len: 1_000_000 }, 'request_output_len'],
    ];
    for (const [path, body, param] of mistakes) {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, ...body }) });
      const json = (await response.json()) as { error: { param: string | null } };
      expect([path, body, response.status, json.error.param]).toEqual([path, body, path.startsWith('/v1/completions') && param === 'model' ? 404 : 400, param]);
    }
    expect((await generate(server, { prompt: 'Hi', request_output_len: 2 })).tokens).toBe(2);
  });

  it('chats twice on a growing conversation (a prefix hit with several new tokens)', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hi there' }];
    for (let turn = 0; turn < 2; turn++) {
      const [got, want] = await Promise.all(clients.map((c) => c.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 4 })));
      expect(got.choices[0].message.content).toBe(want.choices[0].message.content);
      messages.push({ role: 'assistant', content: got.choices[0].message.content ?? '' }, { role: 'user', content: `And turn ${turn}?` });
    }
  });
});
