import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../app/create-app.js';
import type { RequestLog } from '../../app/request-log.js';
import { MockRuntime } from '../../testing/mock-runtime.js';
import { makeEngine, settle } from '../../../test/fixtures/fake-backend.js';

const get = (path: string, headers: Record<string, string> = {}) => new Request(`http://test${path}`, { headers });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  new Request(`http://test${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

async function scrape(app: { fetch(r: Request): Promise<Response> }, headers: Record<string, string> = {}) {
  const res = await app.fetch(get('/metrics', headers));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  const families = parsePrometheusTextFormat(await res.text());
  const value = (name: string, labels: Record<string, string> = {}) =>
    Number(families.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value);
  return { families, value };
}

describe('GET /metrics', () => {
  it('counts requests by every finish reason the runtime reports, tool_calls included', async () => {
    const { engine } = makeEngine();
    const snapshot = engine.metrics!();
    const runtime = Object.assign(Object.create(engine), {
      metrics: () => ({ ...snapshot, requestsFinished: { stop: 1, length: 2, tool_calls: 3, abort: 4, error: 5 } }),
    });
    const { families, value } = await scrape(createApp({ runtime }));
    expect(value('edgellm:request_success_total', { finished_reason: 'tool_calls' })).toBe(3);
    expect(value('edgellm:request_success_total', { finished_reason: 'abort' })).toBe(4);
    expect(families.find((f) => f.name === 'edgellm:request_success_total')?.metrics.map((m) => m.labels?.finished_reason)).toEqual(['stop', 'length', 'tool_calls', 'abort']);
    expect(value('edgellm:request_errors_total')).toBe(5);
  });

  it("renders the engine's counters and the app's HTTP counts, matching the responses' usage", async () => {
    const { engine, tokenizer } = makeEngine({ backend: { kvBytesPerToken: 16 }, engine: { cacheMaxBytes: 16_000 } });
    tokenizer.applyChatTemplate = (messages) => messages.map((m) => m.content).join(' ');
    const app = createApp({ runtime: engine });
    const chat = { messages: [{ role: 'user', content: 'one two three' }], max_tokens: 3 };
    const first = await (await app.fetch(post('/v1/chat/completions', chat))).json();
    const second = await (await app.fetch(post('/v1/chat/completions', chat))).json();
    expect(first.usage.prompt_tokens_details).toEqual({ cached_tokens: 0 });
    expect(second.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    const turn1 = await (await app.fetch(post('/generate', { prompt: 'one', session_id: 7, request_output_len: 2 }))).json();
    const turn2 = await (await app.fetch(post('/generate', { prompt: 'four', session_id: 7, sequence_start: false, request_output_len: 2 }))).json();
    expect(turn1.history_tokens).toBe(0);
    expect(turn2.history_tokens).toBeGreaterThan(0);
    await settle();

    const { families, value } = await scrape(app);
    const prompt = first.usage.prompt_tokens + second.usage.prompt_tokens + turn1.input_tokens + turn2.input_tokens;
    const generated = first.usage.completion_tokens + second.usage.completion_tokens + turn1.tokens + turn2.tokens;
    expect(value('edgellm:prompt_tokens_total')).toBe(prompt);
    expect(value('edgellm:generation_tokens_total')).toBe(generated);
    expect(value('edgellm:prefix_cache_hits_total')).toBe(second.usage.prompt_tokens_details.cached_tokens + turn2.history_tokens);
    expect(value('edgellm:request_success_total', { finished_reason: 'length' })).toBe(4);
    expect(value('edgellm:sessions_open')).toBe(1);
    expect(value('edgellm:kv_cache_bytes')).toBeGreaterThan(0);
    expect(value('edgellm:num_requests_running')).toBe(0);
    expect(families.find((f) => f.name === 'edgellm:model_info')?.metrics[0].labels).toEqual({ model_name: 'fake-model' });
    const ttft = families.find((f) => f.name === 'edgellm:time_to_first_token_seconds')!;
    expect(ttft.type).toBe('HISTOGRAM');
    expect(ttft.metrics[0].count).toBe('4');
    expect(value('edgellm:http_requests_total', { route: '/v1/chat/completions', status: '200' })).toBe(2);
    expect(value('edgellm:http_requests_total', { route: '/generate', status: '200' })).toBe(2);
  });

  it('counts unknown paths under one label, and 4xx by status', async () => {
    const app = createApp({ runtime: new MockRuntime() });
    await app.fetch(get('/wp-admin'));
    await app.fetch(get('/.env'));
    await app.fetch(post('/v1/chat/completions', { messages: [] }));
    const { value, families } = await scrape(app);
    expect(value('edgellm:http_requests_total', { route: 'other', status: '404' })).toBe(2);
    expect(value('edgellm:http_requests_total', { route: '/v1/chat/completions', status: '400' })).toBe(1);
    // A runtime without metrics still gets the HTTP counters.
    expect(families.map((f) => f.name)).toEqual(['edgellm:http_requests_total']);
  });

  it('needs a key when the app has keys, unless metricsPublic', async () => {
    const runtime = new MockRuntime();
    const keyed = createApp({ runtime, apiKeys: ['k'] });
    expect((await keyed.fetch(get('/metrics'))).status).toBe(401);
    expect((await keyed.fetch(get('/metrics', { authorization: 'Bearer k' }))).status).toBe(200);
    const open = createApp({ runtime, apiKeys: ['k'], metricsPublic: true });
    expect((await open.fetch(get('/metrics'))).status).toBe(200);
    expect((await open.fetch(get('/v1/models'))).status).toBe(401);
  });
});

describe('x-request-id', () => {
  it('echoes a sane client id, replaces anything else, and puts it in the log line', async () => {
    const logs: RequestLog[] = [];
    const app = createApp({ runtime: new MockRuntime(), onRequestLog: (log) => logs.push(log) });
    const echoed = await app.fetch(get('/v1/models', { 'x-request-id': 'lb-1234' }));
    expect(echoed.headers.get('x-request-id')).toBe('lb-1234');
    await echoed.text(); // a record is written when its body has been read
    const generated = await app.fetch(get('/v1/models'));
    const invented = generated.headers.get('x-request-id');
    expect(invented).toMatch(/^[0-9a-f-]{36}$/);
    await generated.text();
    const bad = await app.fetch(get('/v1/models', { 'x-request-id': 'x'.repeat(500) }));
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await bad.text();
    const streamed = await app.fetch(post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true }, { 'x-request-id': 's-1' }));
    expect(streamed.headers.get('x-request-id')).toBe('s-1');
    await streamed.text();
    const errored = await app.fetch(get('/nowhere', { 'x-request-id': 'e-1' }));
    expect(errored.status).toBe(404);
    expect(errored.headers.get('x-request-id')).toBe('e-1');
    await errored.text();
    expect(logs.map((l) => l.requestId)).toEqual(['lb-1234', invented, expect.any(String), 's-1', 'e-1']);
  });

  it('is on responses without a request log too, and exposed to browsers with CORS', async () => {
    const app = createApp({ runtime: new MockRuntime(), cors: '*' });
    const res = await app.fetch(get('/health', { 'x-request-id': 'h-1', origin: 'http://a.example' }));
    expect(res.headers.get('x-request-id')).toBe('h-1');
    expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id');
  });
});
