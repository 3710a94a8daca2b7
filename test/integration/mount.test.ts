/**
 * edgellm mounted under /llm inside other people's apps: the Hono, itty-router and node:http
 * examples from examples/, called in-process and over loopback HTTP with the official openai client.
 */
import { createAdaptorServer } from '@hono/node-server';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../examples/hono/app.mjs';
import { buildRouter } from '../../examples/itty-router/app.mjs';
import { buildListener } from '../../examples/node-http/listener.mjs';
import { MockRuntime } from '../../src/testing/mock-runtime.js';

type FetchLike = (request: Request) => Promise<Response> | Response;

const runtime = (delayMs = 0) => new MockRuntime({ model: 'mock-model', script: { pieces: ['Hello', ',', ' world'], promptTokens: 3, delayMs } });

const chat = (stream: boolean) =>
  new Request('http://host/llm/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'Hi' }], stream }),
  });

/** What every host must get right: edgellm's routes under the prefix, the host's own routes untouched. */
async function checkMounted(fetch: FetchLike): Promise<void> {
  const models = await fetch(new Request('http://host/llm/v1/models'));
  expect(models.status).toBe(200);
  expect((await models.json()).data.map((m: { id: string }) => m.id)).toEqual(['mock-model']);

  const reply = await (await fetch(chat(false))).json();
  expect(reply.choices[0].message.content).toBe('Hello, world');

  const stream = await fetch(chat(true));
  expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const sse = await stream.text();
  expect(sse.endsWith('data: [DONE]\n\n')).toBe(true);
  expect(sse).toContain('"content":" world"');

  // Unknown paths under the prefix are edgellm's: OpenAI error objects.
  const missing = await fetch(new Request('http://host/llm/v1/nope'));
  expect(missing.status).toBe(404);
  expect((await missing.json()).error.code).toBe('unknown_route');
  const wrongMethod = await fetch(new Request('http://host/llm/v1/models', { method: 'POST' }));
  expect(wrongMethod.status).toBe(405);

  // The host's own routes still answer, and edgellm's paths are not served outside the prefix.
  expect((await fetch(new Request('http://host/'))).status).toBe(200);
  expect((await fetch(new Request('http://host/v1/models'))).status).toBe(404);
}

describe('mounted under a prefix', () => {
  it('in Hono (app.all("/llm/*"))', async () => {
    const app = buildApp(runtime());
    await checkMounted((request) => app.fetch(request));
  });

  it('in itty-router (router.all("/llm/*"))', async () => {
    const router = buildRouter(runtime());
    await checkMounted((request) => router.fetch(request));
  });
});

describe('mounted, over loopback HTTP', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map((s) => {
        s.closeAllConnections();
        return new Promise((done) => s.close(done));
      }),
    );
  });

  const listen = (server: Server): Promise<string> =>
    new Promise((resolve) => {
      servers.push(server);
      server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
    });

  const openai = (url: string) => new OpenAI({ apiKey: 'x', baseURL: `${url}/llm/v1`, maxRetries: 0 });

  it('Hono on @hono/node-server streams to the openai client', async () => {
    const app = buildApp(runtime());
    const url = await listen(createAdaptorServer({ fetch: app.fetch }) as Server);
    const chunks: string[] = [];
    const stream = await openai(url).chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'Hi' }], stream: true });
    for await (const chunk of stream) chunks.push(chunk.choices[0]?.delta.content ?? '');
    expect(chunks.join('')).toBe('Hello, world');
  });

  it('node:http hands /llm to edgellm, keeps its own routes, and passes a disconnect through', async () => {
    const mock = runtime(50);
    const url = await listen(createServer(buildListener(mock)));
    expect(await (await fetch(`${url}/`)).text()).toMatch(/^my app/);
    const completion = await openai(url).completions.create({ model: 'mock-model', prompt: 'Hi' });
    expect(completion.choices[0].text).toBe('Hello, world');

    const abort = new AbortController();
    const response = await fetch(`${url}/llm/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Hi', stream: true }),
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    abort.abort();
    await expect.poll(() => mock.cancelled, { timeout: 2000 }).toBe(1);
  });
});
