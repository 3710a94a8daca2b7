import { describe, expect, it, vi } from 'vitest';
import { createApp, type App, type AppOptions } from './create-app.js';
import { InferenceError } from '../errors.js';
import { MockRuntime } from '../testing/mock-runtime.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const GENERIC_500 = 'The server had an error while processing your request.';

function makeApp(options: Partial<AppOptions> = {}, runtime = new MockRuntime()): { app: App; runtime: MockRuntime } {
  return { app: createApp({ runtime, ...options }), runtime };
}

function get(app: App, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return app.fetch(new Request(`http://test${path}`, { headers }));
}

function post(app: App, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return app.fetch(
    new Request(`http://test${path}`, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
    }),
  );
}

const chatBody = { messages: [{ role: 'user', content: 'Hi' }] };

/** Splits an SSE body into its `data:` payloads, checking the framing. */
function parseSse(raw: string): string[] {
  expect(raw.endsWith('\n\n')).toBe(true);
  return raw
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      return block.slice('data: '.length);
    });
}

function expectError(body: Json, type: string, code: string | null, param: string | null = null) {
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toEqual({ message: expect.any(String), type, param, code });
  expect(body.error.message.length).toBeGreaterThan(0);
}

describe('routing', () => {
  it('GET / describes the server', async () => {
    const { app } = makeApp();
    const res = await get(app, '/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body: Json = await res.json();
    expect(body.name).toBe('edgellm');
    expect(body.status).toBe('ready');
    expect(body.models).toEqual(['mock-model']);
    expect(body.endpoints).toContain('POST /v1/chat/completions');
    expect(body.endpoints).toContain('POST /generate');
  });

  it('routes every endpoint to its handler', async () => {
    const { app } = makeApp({}, new MockRuntime({ embeddingModel: 'embed' }));
    expect((await (await get(app, '/v1/models')).json()).object).toBe('list');
    expect((await (await get(app, '/v1/models/mock-model')).json()).object).toBe('model');
    expect((await (await post(app, '/v1/completions', { prompt: 'x' })).json()).object).toBe('text_completion');
    expect((await (await post(app, '/v1/chat/completions', chatBody)).json()).object).toBe('chat.completion');
    expect((await (await post(app, '/v1/embeddings', { input: 'x' })).json()).object).toBe('list');
    expect(await (await post(app, '/generate', { prompt: 'x' })).json()).toMatchObject({ text: 'Hello world', tokens: 2 });
  });

  it('answers 404 with an OpenAI error for an unknown route', async () => {
    const { app } = makeApp();
    for (const res of [await get(app, '/v2/models'), await post(app, '/v1/nope', {}), await get(app, '/v1')]) {
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/json');
      expectError(await res.json(), 'not_found_error', 'unknown_route');
    }
  });

  it('answers 405 with an Allow header when the path exists with another method', async () => {
    const { app } = makeApp();
    const cases: Array<[string, string, string]> = [
      ['GET', '/v1/completions', 'POST'],
      ['GET', '/v1/chat/completions', 'POST'],
      ['GET', '/v1/embeddings', 'POST'],
      ['GET', '/generate', 'POST'],
      ['POST', '/v1/models', 'GET, HEAD'],
      ['POST', '/v1/models/mock-model', 'GET, HEAD'],
      ['POST', '/health', 'GET, HEAD'],
      ['DELETE', '/v1/chat/completions', 'POST'],
      ['PUT', '/v1/models', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await app.fetch(new Request(`http://test${path}`, { method, body: method === 'GET' ? undefined : '{}' }));
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expectError(await res.json(), 'invalid_request_error', null);
    }
  });
});

describe('health', () => {
  it('GET /health is 200 ok when ready', async () => {
    const { app } = makeApp();
    const res = await get(app, '/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /health is 503 while loading and after close', async () => {
    const { app, runtime } = makeApp();
    runtime.setStatus('loading');
    let res = await get(app, '/health');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'loading' });
    expect((await (await get(app, '/')).json()).models).toEqual([]);

    runtime.setStatus('ready');
    expect((await get(app, '/health')).status).toBe(200);

    await runtime.close();
    res = await get(app, '/health');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'closed' });
  });

  it('generation while loading is a 503 service_unavailable error', async () => {
    const { app, runtime } = makeApp();
    runtime.setStatus('loading');
    const res = await post(app, '/v1/chat/completions', chatBody);
    expect(res.status).toBe(503);
    expectError(await res.json(), 'service_unavailable', null);
  });
});

describe('API keys', () => {
  const keys = { apiKeys: ['sk-one', 'sk-two'] };

  it('401s without a key, with an OpenAI authentication error and WWW-Authenticate', async () => {
    const { app, runtime } = makeApp(keys);
    for (const res of [await get(app, '/v1/models'), await post(app, '/v1/chat/completions', chatBody)]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const body: Json = await res.json();
      expectError(body, 'authentication_error', 'invalid_api_key');
      expect(body.error.message).toMatch(/missing/i);
    }
    expect(runtime.requests).toHaveLength(0);
  });

  it('401s with a wrong key or a non-Bearer scheme', async () => {
    const { app, runtime } = makeApp(keys);
    for (const authorization of ['Bearer sk-three', 'Bearer sk-on', 'Bearer sk-one-more', 'Basic sk-one', 'sk-one']) {
      const res = await post(app, '/v1/chat/completions', chatBody, { authorization });
      expect(res.status, authorization).toBe(401);
      expectError(await res.json(), 'authentication_error', 'invalid_api_key');
    }
    const wrong: Json = await (await get(app, '/v1/models', { authorization: 'Bearer nope' })).json();
    expect(wrong.error.message).toBe('Incorrect API key provided.');
    expect(runtime.requests).toHaveLength(0);
  });

  it('accepts any configured key', async () => {
    const { app, runtime } = makeApp(keys);
    expect((await get(app, '/v1/models', { authorization: 'Bearer sk-one' })).status).toBe(200);
    expect((await post(app, '/v1/chat/completions', chatBody, { authorization: 'Bearer sk-two' })).status).toBe(200);
    expect((await post(app, '/v1/chat/completions', chatBody, { authorization: 'bearer sk-two' })).status).toBe(200);
    expect(runtime.requests).toHaveLength(2);
  });

  it('keeps / and /health public', async () => {
    const { app } = makeApp(keys);
    expect((await get(app, '/health')).status).toBe(200);
    expect((await get(app, '/')).status).toBe(200);
  });

  it('requires no key when apiKeys is unset or empty', async () => {
    expect((await get(makeApp().app, '/v1/models')).status).toBe(200);
    expect((await get(makeApp({ apiKeys: [] }).app, '/v1/models')).status).toBe(200);
  });
});

describe('CORS', () => {
  const allowed = 'https://allowed.example';
  const preflight = (app: App, origin: string, path = '/v1/chat/completions') =>
    app.fetch(
      new Request(`http://test${path}`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      }),
    );

  it('answers a preflight from an allowed origin with 204 and the allow headers', async () => {
    const { app, runtime } = makeApp({ cors: [allowed] });
    const res = await preflight(app, allowed);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(res.headers.get('access-control-allow-methods')?.split(',')).toEqual(['GET', 'HEAD', 'POST', 'OPTIONS']);
    expect(res.headers.get('access-control-allow-headers')?.split(',')).toEqual(['authorization', 'content-type']);
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(runtime.requests).toHaveLength(0);
  });

  it('gives no allow-origin to a disallowed origin', async () => {
    const { app } = makeApp({ cors: [allowed] });
    const res = await preflight(app, 'https://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const normal = await get(app, '/v1/models', { origin: 'https://evil.example' });
    expect(normal.status).toBe(200);
    expect(normal.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('adds allow-origin to ordinary and error responses for an allowed origin', async () => {
    const { app } = makeApp({ cors: [allowed] });
    const ok = await get(app, '/v1/models', { origin: allowed });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(allowed);
    const missing = await get(app, '/v1/models/nope', { origin: allowed });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('access-control-allow-origin')).toBe(allowed);
  });

  it("'*' allows any origin", async () => {
    const { app } = makeApp({ cors: '*' });
    const res = await preflight(app, 'https://anyone.example');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect((await get(app, '/v1/models', { origin: 'https://x.example' })).headers.get('access-control-allow-origin')).toBe('*');
  });

  it('sends no CORS headers when cors is unset', async () => {
    const { app } = makeApp();
    const res = await get(app, '/v1/models', { origin: allowed });
    expect(res.status).toBe(200);
    expect([...res.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
    const pre = await preflight(app, allowed, '/v1/models');
    expect(pre.status).toBe(405);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('lets preflights through without an API key, and corsifies the 401', async () => {
    const { app } = makeApp({ cors: [allowed], apiKeys: ['k'] });
    const pre = await preflight(app, allowed);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(allowed);
    const denied = await post(app, '/v1/chat/completions', chatBody, { origin: allowed });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(allowed);
  });

  it('keeps streaming responses streaming', async () => {
    const runtime = new MockRuntime({ script: { pieces: ['a', 'b', 'c'], delayMs: 5 } });
    const { app } = makeApp({ cors: [allowed] }, runtime);
    const res = await post(app, '/v1/chat/completions', { ...chatBody, stream: true }, { origin: allowed });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const payloads = parseSse(await res.text());
    expect(payloads.at(-1)).toBe('[DONE]');
    const chunks: Json[] = payloads.slice(0, -1).map((p) => JSON.parse(p));
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('abc');
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
  });

  it('cancelling a corsified stream still cancels the generation', async () => {
    const runtime = new MockRuntime({ script: { pieces: Array.from({ length: 50 }, () => 'x'), delayMs: 10 } });
    const { app } = makeApp({ cors: [allowed] }, runtime);
    const res = await post(app, '/v1/chat/completions', { ...chatBody, stream: true }, { origin: allowed });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    await vi.waitFor(() => expect(runtime.cancelled).toBe(1), { timeout: 2000 });
  });
});

describe('basePath', () => {
  it("mounts the API under the base: '/llm/v1/models' works, '/v1/models' is 404", async () => {
    const { app } = makeApp({ basePath: '/llm' });
    const mounted = await get(app, '/llm/v1/models');
    expect(mounted.status).toBe(200);
    expect((await mounted.json()).data[0].id).toBe('mock-model');
    const bare = await get(app, '/v1/models');
    expect(bare.status).toBe(404);
    expectError(await bare.json(), 'not_found_error', 'unknown_route');
    expect((await get(app, '/llmx/v1/models')).status).toBe(404);
  });

  it('serves every route under the base, including / and /health', async () => {
    const { app } = makeApp({ basePath: '/llm/' });
    expect((await get(app, '/llm/health')).status).toBe(200);
    expect((await (await get(app, '/llm')).json()).name).toBe('edgellm');
    expect((await get(app, '/llm/v1/models/mock-model')).status).toBe(200);
    const chat = await post(app, '/llm/v1/chat/completions', chatBody);
    expect(chat.status).toBe(200);
    expect((await chat.json()).choices[0].message.content).toBe('Hello world');
    expect((await post(app, '/llm/generate', { prompt: 'x' })).status).toBe(200);
    const wrongMethod = await get(app, '/llm/v1/chat/completions');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });

  it('keeps /health and / public under the base', async () => {
    const { app } = makeApp({ basePath: '/llm', apiKeys: ['k'] });
    expect((await get(app, '/llm/health')).status).toBe(200);
    expect((await get(app, '/llm/')).status).toBe(200);
    expect((await get(app, '/llm/v1/models')).status).toBe(401);
    expect((await get(app, '/llm/v1/models', { authorization: 'Bearer k' })).status).toBe(200);
  });
});

describe('request bodies', () => {
  it('413s a body whose content-length is over the limit', async () => {
    const { app, runtime } = makeApp({ maxBodyBytes: 100 });
    const res = await app.fetch(
      new Request('http://test/v1/chat/completions', {
        method: 'POST',
        body: JSON.stringify(chatBody),
        headers: { 'content-type': 'application/json', 'content-length': '101' },
      }),
    );
    expect(res.status).toBe(413);
    expectError(await res.json(), 'invalid_request_error', 'request_too_large');
    expect(runtime.requests).toHaveLength(0);
  });

  it('413s a chunked body with no content-length once it passes the limit', async () => {
    const { app, runtime } = makeApp({ maxBodyBytes: 100 });
    const piece = new TextEncoder().encode(' '.repeat(40));
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulls++ === 0) controller.enqueue(new TextEncoder().encode('{"messages":[{"role":"user","content":"Hi"}]'));
        else if (pulls < 50) controller.enqueue(piece);
        else controller.close();
      },
    });
    const request = new Request('http://test/v1/chat/completions', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit);
    expect(request.headers.get('content-length')).toBeNull();
    const res = await app.fetch(request);
    expect(res.status).toBe(413);
    expectError(await res.json(), 'invalid_request_error', 'request_too_large');
    // It stopped reading soon after the limit instead of draining the whole body.
    expect(pulls).toBeLessThan(10);
    expect(runtime.requests).toHaveLength(0);
  });

  it('accepts a chunked body under the limit', async () => {
    const { app } = makeApp({ maxBodyBytes: 1000 });
    const parts = ['{"messages":', '[{"role":"user",', '"content":"Hi"}]}'];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const p of parts) controller.enqueue(new TextEncoder().encode(p));
        controller.close();
      },
    });
    const res = await app.fetch(
      new Request('http://test/v1/chat/completions', { method: 'POST', body, duplex: 'half' } as RequestInit),
    );
    expect(res.status).toBe(200);
  });

  it('400s invalid JSON', async () => {
    const { app } = makeApp();
    const res = await post(app, '/v1/chat/completions', '{"messages": [');
    expect(res.status).toBe(400);
    const body: Json = await res.json();
    expectError(body, 'invalid_request_error', null);
    expect(body.error.message).toMatch(/not valid JSON/);
  });

  it('400s an empty body', async () => {
    const { app } = makeApp();
    const noBody = await app.fetch(new Request('http://test/v1/completions', { method: 'POST' }));
    expect(noBody.status).toBe(400);
    expectError(await noBody.json(), 'invalid_request_error', null);
    const blank = await post(app, '/v1/completions', '   ');
    expect(blank.status).toBe(400);
  });

  it('400s JSON that is not an object', async () => {
    const { app } = makeApp();
    for (const raw of ['[1,2]', '"hello"', '42', 'null', 'true']) {
      for (const path of ['/v1/completions', '/v1/chat/completions', '/v1/embeddings', '/generate']) {
        const res = await post(app, path, raw);
        expect(res.status, `${path} ${raw}`).toBe(400);
        const body: Json = await res.json();
        expectError(body, 'invalid_request_error', null);
        expect(body.error.message).toBe('The request body must be a JSON object.');
      }
    }
  });
});

describe('errors', () => {
  it('turns unknown errors into a generic 500 and reports them to onError', async () => {
    const secret = new Error('database password is hunter2');
    const onError = vi.fn();
    const runtime = new MockRuntime({ script: { pieces: [], error: secret } });
    const { app } = makeApp({ onError }, runtime);
    const res = await post(app, '/v1/chat/completions', chatBody);
    expect(res.status).toBe(500);
    const body: Json = await res.json();
    expect(body).toEqual({ error: { message: GENERIC_500, type: 'server_error', param: null, code: null } });
    expect(JSON.stringify(body)).not.toContain('hunter2');
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledWith(secret);
  });

  it('does not report InferenceErrors to onError and keeps their status and headers', async () => {
    const onError = vi.fn();
    const runtime = new MockRuntime({
      script: { pieces: [], error: new InferenceError(429, 'Too many requests.', { headers: { 'retry-after': '7' } }) },
    });
    const { app } = makeApp({ onError }, runtime);
    const res = await post(app, '/v1/completions', { prompt: 'x' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({ error: { message: 'Too many requests.', type: 'rate_limit_error', param: null, code: null } });
    expect(onError).not.toHaveBeenCalled();
  });

  it('still returns a 500 when onError is not set', async () => {
    const { app } = makeApp({}, new MockRuntime({ script: { pieces: [], error: new TypeError('x is undefined') } }));
    const res = await post(app, '/generate', { prompt: 'x' });
    expect(res.status).toBe(500);
    expect((await res.json()).error.message).toBe(GENERIC_500);
  });
});
