import { describe, expect, it, vi } from 'vitest';
import { createApp, defaultMaxBodyBytes } from './create-app.js';
import { MockRuntime } from '../testing/mock-runtime.js';

const post = (body: BodyInit, init: RequestInit = {}) =>
  new Request('http://test/v1/completions', { method: 'POST', body, headers: { 'content-type': 'application/json' }, ...init });

describe('hostile requests at the app level', () => {
  it('answers 404, not 500, for a malformed model id', async () => {
    const onError = vi.fn();
    const app = createApp({ runtime: new MockRuntime(), onError });
    const res = await app.fetch(new Request('http://test/v1/models/%ZZ'));
    expect(res.status).toBe(404);
    expect((await res.json()).error).toMatchObject({ param: 'model', code: 'model_not_found' });
    expect(onError).not.toHaveBeenCalled();
  });

  it('answers HEAD on every GET route with the GET status and headers and no body', async () => {
    const app = createApp({ runtime: new MockRuntime() });
    for (const path of ['/health', '/v1/models', '/v1/models/mock-model', '/openapi.json', '/ui', '/']) {
      const res = await app.fetch(new Request(`http://test${path}`, { method: 'HEAD' }));
      const get = await app.fetch(new Request(`http://test${path}`));
      expect(res.status, path).toBe(get.status);
      expect(res.headers.get('content-type'), path).toBe(get.headers.get('content-type'));
      expect(await res.text(), path).toBe('');
    }
    const missing = await app.fetch(new Request('http://test/v1/models/nope', { method: 'HEAD' }));
    expect(missing.status).toBe(404);
  });

  it('says Vary: Origin when the CORS answer depends on the origin', async () => {
    const listed = createApp({ runtime: new MockRuntime(), cors: ['https://a.example'] });
    for (const origin of ['https://a.example', 'https://b.example']) {
      const res = await listed.fetch(new Request('http://test/v1/models', { headers: { origin } }));
      expect(res.headers.get('vary')).toContain('Origin');
    }
    const any = createApp({ runtime: new MockRuntime(), cors: '*' });
    expect((await any.fetch(new Request('http://test/v1/models', { headers: { origin: 'https://x' } }))).headers.get('vary')).toBeNull();
  });

  it('names the field and the rule in validation errors, unions included', async () => {
    const app = createApp({ runtime: new MockRuntime() });
    const cases: Array<[unknown, string, RegExp]> = [
      [{ prompt: 5 }, 'prompt', /none of the accepted forms \(expected string, received number; expected array, received number\)/],
      [{ prompt: [1, 'a'] }, 'prompt', /\[1\] expected number, received string/],
      [{ prompt: 'x', n: 99 }, 'n', /expected number to be <=16/],
      [{}, 'prompt', /'prompt' is required/],
    ];
    for (const [body, param, message] of cases) {
      const res = await app.fetch(post(JSON.stringify(body)));
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.param).toBe(param);
      expect(error.message).toMatch(message);
      expect(error.message).not.toMatch(/^Invalid input$/);
    }
  });

  it('answers 408 when a body does not arrive in time, and 400 (not an internal error) when it is cut off', async () => {
    const onError = vi.fn();
    const app = createApp({ runtime: new MockRuntime(), onError, requestTimeoutMs: 100 });
    const stalled = new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{"prompt":')) });
    const res = await app.fetch(post(stalled, { duplex: 'half' } as RequestInit));
    expect(res.status).toBe(408);
    expect((await res.json()).error.code).toBe('request_timeout');

    const broken = new ReadableStream({
      start: (c) => {
        c.enqueue(new TextEncoder().encode('{"prompt":'));
        setTimeout(() => c.error(new Error('aborted')), 10);
      },
    });
    const cut = await app.fetch(post(broken, { duplex: 'half' } as RequestInit));
    expect(cut.status).toBe(400);
    expect((await cut.json()).error.code).toBe('body_incomplete');
    expect(onError).not.toHaveBeenCalled();
  });

  it('derives the default body limit from the context (256 bytes a token, at least 1 MiB)', async () => {
    expect(defaultMaxBodyBytes(new MockRuntime())).toBe(1024 * 1024);
    const big = new MockRuntime();
    vi.spyOn(big, 'models').mockReturnValue([{ ...big.models()[0], contextLength: 32768 }]);
    expect(defaultMaxBodyBytes(big)).toBe(8 * 1024 * 1024);
    const app = createApp({ runtime: new MockRuntime() });
    const res = await app.fetch(post(JSON.stringify({ prompt: 'x'.repeat(1024 * 1024 + 1) })));
    expect(res.status).toBe(413);
  });
});
