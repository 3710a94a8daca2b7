/**
 * The real server (CLI, worker thread, onnxruntime-node) on stories260K, called over loopback HTTP
 * with fetch and the official openai client.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse, startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const dir = sharedModel(STORIES);

// karpathy's published temperature-0 sample for this checkpoint (llama2.c doc/stories260K.md).
const GOLDEN = ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.';

describe.skipIf(!dir)('stories260K through the real server', () => {
  let server: CliServer;
  let client: OpenAI;
  const post = (path: string, body: unknown) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    server = await startCli([dir!, '--model-name', 'karpathy__stories260K,internlm-chat-7b', '--dtype', 'fp32']);
    client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('prints a start-up line with URL, model, device, dtype and load time', () => {
    expect(server.output()).toMatch(/serving karpathy__stories260K, internlm-chat-7b at http:\/\/127\.0\.0\.1:\d+ \(device cpu, dtype fp32, loaded in [\d.]+ s/);
  });

  it('greedy-decodes the known story', async () => {
    const completion = await client.completions.create({ model: 'karpathy__stories260K', prompt: 'Once upon a time', temperature: 0, max_tokens: 60 });
    expect(completion.choices[0].text.startsWith(GOLDEN)).toBe(true);
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.usage).toEqual({ prompt_tokens: 5, completion_tokens: 60, total_tokens: 65 });
  });

  it('lists models through the openai client', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    expect(models).toEqual(['karpathy__stories260K', 'internlm-chat-7b']);
  });

  it('streams completions whose concatenation equals the non-streamed text', async () => {
    const body = { model: 'karpathy__stories260K', prompt: 'Once upon a time', temperature: 0, max_tokens: 80 };
    const full = await client.completions.create(body);
    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of await client.completions.create({ ...body, stream: true })) {
      streamed += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(streamed).toBe(full.choices[0].text);
    expect(finish).toBe('length');
  });

  it('streams chat with include_usage, equal to the non-streamed reply', async () => {
    const body = { model: 'internlm-chat-7b', messages: [{ role: 'user' as const, content: 'Tell me a story' }], temperature: 0, max_tokens: 60 };
    const full = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const ids = new Set<string>();
    let usage: unknown;
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(ids.size).toBe(1);
    expect(text).toBe(full.choices[0].message.content);
    expect(usage).toEqual(full.usage);
  });

  it('streams /generate NDJSON equal to the non-streamed text', async () => {
    const body = { prompt: 'Once upon a time', session_id: -1, request_output_len: 40, temperature: 0 };
    const full = await (await post('/generate', body)).json();
    const lines = (await (await post('/generate', { ...body, stream: true })).text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.text).join('')).toBe(full.text);
    expect(lines.at(-1)).toMatchObject({ finish_reason: 'length', tokens: 40 });
    expect(full.tokens).toBe(40);
  });

  it('keeps a /generate session across turns and ends it', async () => {
    const turn1 = await (await post('/generate', { prompt: 'Once upon a time', session_id: 7, request_output_len: 8, temperature: 0 })).json();
    const turn2 = await (await post('/generate', { prompt: 'The end', session_id: 7, sequence_start: false, sequence_end: true, request_output_len: 8, temperature: 0 })).json();
    // Turn 2 saw turn 1's prompt and reply, so its prompt is longer than the first one.
    expect(turn2.input_tokens).toBeGreaterThan(turn1.input_tokens + 8);
    const fresh = await (await post('/generate', { prompt: 'The end', session_id: 7, sequence_start: false, request_output_len: 8, temperature: 0 })).json();
    expect(fresh.input_tokens).toBeLessThan(turn2.input_tokens);
  });

  it('returns embeddings of the hidden size (64) from the generation model', async () => {
    const result = await client.embeddings.create({ model: 'internlm-chat-7b', input: ['The weather is really nice today', 'Hello world!'] });
    expect(result.data).toHaveLength(2);
    expect(result.data[0].embedding).toHaveLength(64);
    const norm = Math.hypot(...result.data[0].embedding);
    expect(norm).toBeCloseTo(1, 4);
  });

  it('answers every seed document request', async () => {
    const seeds: Array<[string, unknown]> = [
      ['/v1/completions', { prompt: 'Tell me where the capital of China is' }],
      ['/v1/completions', { prompt: 'Tell me the strengths and weaknesses of China and the United States respectively', max_tokens: 90, temperature: 0.7, num_beams: 4, top_k: 40 }],
      ['/v1/chat/completions', { messages: [{ role: 'user', message: 'Tell me some stories about Hangzhou' }], repetition_penalty: 1.0 }],
      ['/v1/embeddings', { input: 'The weather is really nice today' }],
      ['/generate', { prompt: 'Hello! How are you?', session_id: 1, sequence_start: true, sequence_end: true }],
      ['/v1/chat/completions', { model: 'internlm-chat-7b', messages: [{ role: 'user', content: 'Hello! Ho are you?' }] }],
      ['/v1/embeddings', { model: 'internlm-chat-7b', input: 'Hello world!' }],
    ];
    for (const [path, body] of seeds) {
      const response = await post(path, body);
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBe(200);
      const json = await response.json();
      expect(json.error).toBeUndefined();
    }
    expect((await fetch(`${server.url}/v1/models`)).status).toBe(200);
  });

  it('returns chat logprobs through the openai client, consistent with the text', async () => {
    const chat = await client.chat.completions.create({
      model: 'karpathy__stories260K', messages: [{ role: 'user', content: 'Once upon a time' }],
      temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 3,
    });
    const content = chat.choices[0].logprobs!.content!;
    expect(content).toHaveLength(12);
    for (const entry of content) {
      expect(entry.top_logprobs).toHaveLength(3);
      expect(entry.top_logprobs[0].logprob).toBeCloseTo(entry.logprob, 5); // greedy: the top token
    }
    expect(content.map((entry) => entry.token).join('')).toBe(chat.choices[0].message.content);
  });

  it('raises the openai client typed errors for bad requests', async () => {
    await expect(client.completions.create({ model: 'nope', prompt: 'x' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.completions.create({ model: 'karpathy__stories260K', prompt: 'x', temperature: 5 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(client.chat.completions.create({ model: 'karpathy__stories260K', messages: [] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const long = 'Once upon a time '.repeat(200);
    const error = await client.completions.create({ model: 'karpathy__stories260K', prompt: long }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.message).toMatch(/maximum context length is 512 tokens/);
  });

  it('keeps serving after bad input: invalid JSON, huge body, wrong method, unknown route', async () => {
    const bad = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: '{not json' });
    expect(bad.status).toBe(400);
    const huge = await post('/v1/completions', { prompt: 'x'.repeat(5 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    expect((await fetch(`${server.url}/v1/completions`)).status).toBe(405);
    expect((await fetch(`${server.url}/v2/nothing`)).status).toBe(404);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('answers /health while a long generation runs (inference is off the event loop)', async () => {
    const order: string[] = [];
    const generation = post('/v1/completions', { prompt: 'Once', max_tokens: 400, temperature: 1, seed: 1, ignore_eos: true }).then(async (r) => {
      await r.json();
      order.push('generation');
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const health = await fetch(`${server.url}/health`);
    order.push('health');
    await generation;
    expect(health.status).toBe(200);
    expect(order).toEqual(['health', 'generation']);
  });

  it('completes concurrent requests with the same text as alone', async () => {
    const prompts = ['Once upon a time', 'Lily and Ben', 'The sun was', 'One day'];
    const alone = [];
    for (const prompt of prompts) alone.push((await client.completions.create({ model: 'karpathy__stories260K', prompt, temperature: 0, max_tokens: 30 })).choices[0].text);
    const together = await Promise.all(prompts.map((prompt) => client.completions.create({ model: 'karpathy__stories260K', prompt, temperature: 0, max_tokens: 30 })));
    expect(together.map((c) => c.choices[0].text)).toEqual(alone);
  });

  it('survives a client that disconnects mid-stream', async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once', max_tokens: 400, stream: true, ignore_eos: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    const after = await post('/v1/completions', { prompt: 'Once upon a time', temperature: 0, max_tokens: 5 });
    expect(after.status).toBe(200);
  });

  it('streams SSE that ends in [DONE] with one id', async () => {
    const response = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], stream: true, max_tokens: 5 });
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const { events, done } = await readSse(response);
    expect(done).toBe(true);
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
    expect(events[0].choices[0].delta.role).toBe('assistant');
    expect(events.at(-1).choices[0].finish_reason).toBe('length');
  });
});
