import { describe, expect, it } from 'vitest';
import { createApp } from './create-app.js';
import { MockRuntime } from '../testing/mock-runtime.js';
import { formatRequestLog, requestLogJson, type RequestLog } from './request-log.js';

function appWithLog(runtime = new MockRuntime({ script: { pieces: ['Hello', ' world'], promptTokens: 7 } })) {
  const logs: RequestLog[] = [];
  const app = createApp({ runtime, onRequestLog: (log) => logs.push(log), basePath: '/llm' });
  return { app, logs, runtime };
}

const post = (path: string, body: unknown, signal?: AbortSignal) =>
  new Request(`http://test${path}?key=secret`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal });

describe('request logs', () => {
  it('records tokens and timings of a non-streamed request once the body is read', async () => {
    const { app, logs } = appWithLog();
    const response = await app.fetch(post('/llm/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }] }));
    const body = await response.json();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ method: 'POST', path: '/llm/v1/chat/completions', status: 200, aborted: false });
    expect(logs[0].promptTokens).toBe(body.usage.prompt_tokens);
    expect(logs[0].completionTokens).toBe(body.usage.completion_tokens);
    expect(logs[0].ttftMs).toBeGreaterThanOrEqual(0);
    expect(logs[0].totalMs).toBeGreaterThanOrEqual(logs[0].ttftMs!);
  });

  it('logs a stream only when it has ended, with its usage', async () => {
    const { app, logs } = appWithLog(new MockRuntime({ script: { pieces: ['a', 'b', 'c'], promptTokens: 4, delayMs: 5 } }));
    const response = await app.fetch(post('/llm/v1/completions', { prompt: 'x', stream: true }));
    expect(response.status).toBe(200);
    expect(logs).toHaveLength(0);
    const text = await response.text();
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ status: 200, promptTokens: 4, completionTokens: 3, aborted: false });
  });

  it('marks a stream the client abandoned', async () => {
    const runtime = new MockRuntime({ script: { pieces: Array(50).fill('x'), delayMs: 10 } });
    const { app, logs } = appWithLog(runtime);
    const response = await app.fetch(post('/llm/generate', { prompt: 'x', stream: true, session_id: 1 }));
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ path: '/llm/generate', status: 200, aborted: true });
    // No usage event arrived before the disconnect: the tokens streamed so far are counted.
    expect(logs[0].completionTokens).toBeGreaterThanOrEqual(1);
    expect(logs[0].completionTokens).toBeLessThan(50);
  });

  it('logs errors and bodies-less answers with their status and no tokens', async () => {
    const { app, logs } = appWithLog();
    await (await app.fetch(new Request('http://test/llm/nope'))).text();
    await (await app.fetch(post('/llm/v1/chat/completions', { messages: [] }))).text();
    await (await app.fetch(new Request('http://test/elsewhere'))).text();
    expect(logs.map((l) => [l.path, l.status, l.promptTokens, l.ttftMs])).toEqual([
      ['/llm/nope', 404, 0, undefined],
      ['/llm/v1/chat/completions', 400, 0, undefined],
      ['/elsewhere', 404, 0, undefined],
    ]);
  });

  it('counts embedding input tokens', async () => {
    const { app, logs } = appWithLog(new MockRuntime({ embeddingModel: 'emb' }));
    const body = await (await app.fetch(post('/llm/v1/embeddings', { input: ['one two', 'three'], model: 'emb' }))).json();
    expect(logs[0].promptTokens).toBe(body.usage.prompt_tokens);
    expect(logs[0].completionTokens).toBe(0);
  });

  it('leaves responses untouched when no logger is set', async () => {
    const app = createApp({ runtime: new MockRuntime() });
    const response = await app.fetch(post('/v1/completions', { prompt: 'x' }));
    expect((await response.json()).choices[0].text).toBe('Hello world');
  });
});

describe('log formats', () => {
  const log: RequestLog = { method: 'POST', path: '/v1/chat/completions', status: 200, promptTokens: 12, completionTokens: 34, ttftMs: 45.26, totalMs: 1234.5, aborted: false };

  it('writes one text line without the query string', () => {
    expect(formatRequestLog(log)).toBe('POST /v1/chat/completions 200 in=12 out=34 ttft=45ms 1.23s');
    expect(formatRequestLog({ ...log, promptTokens: 0, completionTokens: 0, ttftMs: undefined, totalMs: 3.2, status: 404, aborted: true })).toBe(
      'POST /v1/chat/completions 404 3ms (client disconnected)',
    );
  });

  it('uses the API usage names in JSON', () => {
    expect(requestLogJson(log)).toEqual({
      method: 'POST', path: '/v1/chat/completions', status: 200, prompt_tokens: 12, completion_tokens: 34, ttft_ms: 45.3, total_ms: 1234.5, aborted: false, request_id: null,
    });
  });
});
