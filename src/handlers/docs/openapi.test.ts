import { Validator } from '@seriousme/openapi-schema-validator';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createApp, ROUTES, type AppOptions } from '../../app/create-app.js';
import { MockRuntime, type MockRuntimeOptions } from '../../testing/mock-runtime.js';
import { EDGELLM_VERSION, REQUEST_BODIES, RESPONSE_SCHEMAS } from './openapi.js';

type Json = any;

/**
 * Pages for people, not API operations: kept out of the document, as FastAPI does with its /docs.
 * A new API route must get an entry in openapi.ts instead.
 */
const BROWSER_PAGES = new Set(['GET /docs', 'GET /docs/:file', 'GET /ui']);

/** itty-router's `/v1/models/:id+` is OpenAPI's `/v1/models/{id}`. */
const toOpenApiPath = (path: string) => path.replace(/:(\w+)\+?/g, '{$1}');

function appWith(options: Partial<AppOptions> = {}, runtime: MockRuntimeOptions = {}) {
  return createApp({ runtime: new MockRuntime(runtime), ...options });
}

async function fetchDocument(options: Partial<AppOptions> = {}): Promise<Json> {
  const base = (options.basePath ?? '').replace(/\/$/, '');
  const res = await appWith(options).fetch(new Request(`http://test${base}/openapi.json`));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return res.json();
}

function post(app: ReturnType<typeof createApp>, path: string, body: unknown): Promise<Response> {
  return app.fetch(new Request(`http://test${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }));
}

/** Parses with the documented schema and checks nothing was dropped: zod strips keys the schema does not list. */
function expectDocumented(name: keyof typeof RESPONSE_SCHEMAS, body: unknown) {
  const schema: z.ZodType = RESPONSE_SCHEMAS[name];
  const parsed = schema.safeParse(body);
  expect(parsed.error?.issues, `${name}: ${JSON.stringify(body)}`).toBeUndefined();
  expect(parsed.data, `${name} has undocumented fields`).toEqual(body);
}

const ndjson = async (res: Response) => (await res.text()).split('\n').filter(Boolean).map((line) => JSON.parse(line));
const sse = async (res: Response) =>
  (await res.text()).split('\n\n').filter(Boolean).map((b) => b.slice('data: '.length)).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));

describe('GET /openapi.json', () => {
  it.each([
    ['defaults', {}],
    ['a base path and API keys', { basePath: '/llm', apiKeys: ['k'] }],
  ])('is a valid OpenAPI 3.1 document (%s)', async (_, options) => {
    const document = await fetchDocument(options);
    expect(document.openapi).toBe('3.1.0');
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it("gives the package's version", async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    expect(EDGELLM_VERSION).toBe(pkg.version);
    expect((await fetchDocument()).info.version).toBe(pkg.version);
  });

  it('rejects a broken document (the validator really validates)', async () => {
    const document = await fetchDocument();
    document.paths['/v1/models'].get.responses = 'none';
    expect((await new Validator().validate(document)).valid).toBe(false);
  });

  it("documents every route of the app's route table, and no other", async () => {
    const document = await fetchDocument();
    const routes = ROUTES.map(([method, path]) => `${method} ${path}`).filter((r) => !BROWSER_PAGES.has(r));
    expect(routes.length).toBeGreaterThanOrEqual(9);
    for (const route of routes) {
      const [method, path] = route.split(' ');
      expect(document.paths[toOpenApiPath(path)]?.[method.toLowerCase()], `${route} has no entry in the OpenAPI document`).toBeDefined();
    }
    const operations = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item as object).map((m) => `${m.toUpperCase()} ${path}`));
    expect(operations.sort()).toEqual(routes.map((r) => { const [m, p] = r.split(' '); return `${m} ${toOpenApiPath(p)}`; }).sort());
  });

  it('lists every top-level field of every request schema, each with a description', async () => {
    const document = await fetchDocument();
    for (const [path, { name, schema }] of Object.entries(REQUEST_BODIES)) {
      const op = document.paths[path].post;
      expect(op.requestBody.content['application/json'].schema).toEqual({ $ref: `#/components/schemas/${name}` });
      const properties = document.components.schemas[name].properties;
      for (const field of Object.keys(schema.shape)) {
        expect(properties[field], `${path}: '${field}' is missing from ${name}`).toBeDefined();
        expect(properties[field].description, `${path}: '${field}' needs a line in field-docs.ts`).toMatch(/\w/);
      }
      expect(Object.keys(properties).sort()).toEqual(Object.keys(schema.shape).sort());
    }
  });

  it('has no field docs for fields that do not exist', () => {
    for (const [path, { schema, docs }] of Object.entries(REQUEST_BODIES)) {
      expect(Object.keys(docs).filter((field) => !(field in schema.shape)), path).toEqual([]);
    }
  });

  it('carries the constraints of the zod schemas', async () => {
    const schemas = (await fetchDocument()).components.schemas;
    expect(schemas.ChatCompletionRequest.required).toEqual(['messages']);
    expect(schemas.ChatCompletionRequest.properties.messages.minItems).toBe(1);
    expect(schemas.CompletionRequest.properties.temperature.anyOf).toContainEqual({ type: 'number', minimum: 0, maximum: 2 });
    expect(schemas.EmbeddingRequest.properties.encoding_format.anyOf).toContainEqual({ type: 'string', enum: ['float', 'base64'] });
    expect(schemas.GenerateRequest.properties.session_id.anyOf).toContainEqual({ type: 'integer' });
  });

  it('describes errors once, as the OpenAI error object, for every status the API answers', async () => {
    const document = await fetchDocument();
    const statuses = Object.values(document.components.responses).map((r: Json) => r.content['application/json'].schema.$ref);
    expect(new Set(statuses)).toEqual(new Set(['#/components/schemas/Error']));
    const generate = document.paths['/generate'].post.responses;
    expect(Object.keys(generate)).toEqual(['200', '400', '401', '404', '408', '409', '413', '429', '503']);
    expect(generate['429']).toEqual({ $ref: '#/components/responses/TooManyRequests' });
    expect(document.components.responses.TooManyRequests.headers['Retry-After']).toBeDefined();
  });

  it('documents the streams: SSE for the OpenAI endpoints, NDJSON for /generate', async () => {
    const paths = (await fetchDocument()).paths;
    expect(Object.keys(paths['/v1/chat/completions'].post.responses['200'].content)).toEqual(['application/json', 'text/event-stream']);
    expect(Object.keys(paths['/v1/completions'].post.responses['200'].content)).toEqual(['application/json', 'text/event-stream']);
    expect(Object.keys(paths['/generate'].post.responses['200'].content)).toEqual(['application/json', 'application/x-ndjson']);
  });

  it('puts the server URL at the mount point', async () => {
    expect((await fetchDocument()).servers).toEqual([{ url: '/', description: 'This server' }]);
    expect((await fetchDocument({ basePath: '/llm/' })).servers[0].url).toBe('/llm');
  });

  it('requires the bearer key exactly when the server has API keys, and keeps / /health /openapi.json open', async () => {
    const keyed = await fetchDocument({ apiKeys: ['k'] });
    const open = await fetchDocument();
    expect(keyed.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(keyed.paths['/v1/chat/completions'].post.security).toEqual([{ bearerAuth: [] }]);
    expect(keyed.paths['/v1/models'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(open.paths['/v1/chat/completions'].post.security).toEqual([{}, { bearerAuth: [] }]);
    for (const path of ['/', '/health', '/openapi.json']) expect(keyed.paths[path].get.security, path).toEqual([]);
  });
});

describe('request examples (the seed documents\' curl bodies)', () => {
  const cases = Object.entries(REQUEST_BODIES).flatMap(([path, { examples }]) =>
    Object.entries(examples).map(([name, example]) => [path, name, example.value] as const),
  );

  it('has examples from both seed documents for every POST endpoint', () => {
    for (const { examples } of Object.values(REQUEST_BODIES)) expect(Object.keys(examples).length).toBeGreaterThan(0);
    const names = cases.map(([, name]) => name);
    expect(names.some((n) => n.startsWith('alpaca'))).toBe(true);
    expect(names.some((n) => n.startsWith('lmdeploy'))).toBe(true);
  });

  it('are in the document', async () => {
    const document = await fetchDocument();
    for (const [path, name, value] of cases) {
      expect(document.paths[path].post.requestBody.content['application/json'].examples[name].value).toEqual(value);
    }
  });

  it.each(cases)('%s %s is accepted by the handler and answers as documented', async (path, _name, value: Json) => {
    const app = appWith({}, { model: value.model ?? undefined });
    const res = await post(app, path, value);
    expect(res.status, await res.clone().text()).toBe(200);
    if (path === '/generate') {
      if (value.stream) for (const line of await ndjson(res)) expectDocumented('GenerateChunk', line);
      else expectDocumented('GenerateResponse', await res.json());
    } else {
      const names = { '/v1/completions': 'Completion', '/v1/chat/completions': 'ChatCompletion', '/v1/embeddings': 'EmbeddingList' } as const;
      const name = names[path as keyof typeof names];
      expectDocumented(name, await res.json());
    }
  });
});

describe('response schemas match what the handlers send', () => {
  const app = appWith({}, { embeddingModel: 'embed' });

  it('GET /, /health, /v1/models, /v1/models/{id}', async () => {
    const get = async (path: string) => (await app.fetch(new Request(`http://test${path}`))).json();
    expectDocumented('ServerInfo', await get('/'));
    expectDocumented('Health', await get('/health'));
    expectDocumented('ModelList', await get('/v1/models'));
    expectDocumented('Model', await get('/v1/models/mock-model'));
  });

  it('completions: plain, with logprobs, and streamed with usage', async () => {
    expectDocumented('Completion', await (await post(app, '/v1/completions', { prompt: 'a', logprobs: 2 })).json());
    expectDocumented('Completion', await (await post(app, '/v1/completions', { prompt: ['a', 'b'], echo: true })).json());
    const chunks = await sse(await post(app, '/v1/completions', { prompt: 'a', stream: true, logprobs: 1, stream_options: { include_usage: true } }));
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) expectDocumented('CompletionChunk', chunk);
    for (const chunk of await sse(await post(app, '/v1/completions', { prompt: 'a', stream: true }))) expectDocumented('CompletionChunk', chunk);
  });

  it('chat: plain, with logprobs, and streamed with usage', async () => {
    const messages = [{ role: 'user', content: 'hi' }];
    expectDocumented('ChatCompletion', await (await post(app, '/v1/chat/completions', { messages, logprobs: true, top_logprobs: 2, n: 2 })).json());
    const chunks = await sse(await post(app, '/v1/chat/completions', { messages, stream: true, logprobs: true, stream_options: { include_usage: true } }));
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) expectDocumented('ChatCompletionChunk', chunk);
  });

  it('embeddings: float and base64', async () => {
    expectDocumented('EmbeddingList', await (await post(app, '/v1/embeddings', { input: ['a', 'b'] })).json());
    expectDocumented('EmbeddingList', await (await post(app, '/v1/embeddings', { input: 'a', encoding_format: 'base64' })).json());
  });

  it('errors: 400, 401, 404', async () => {
    expectDocumented('Error', await (await post(app, '/v1/chat/completions', { messages: [] })).json());
    expectDocumented('Error', await (await post(app, '/v1/completions', { prompt: 'a', model: 'nope' })).json());
    const keyed = appWith({ apiKeys: ['k'] });
    expectDocumented('Error', await (await keyed.fetch(new Request('http://test/v1/models'))).json());
  });

  it('notices an undocumented field', () => {
    expect(() => expectDocumented('Health', { status: 'ok', extra: 1 })).toThrow(/undocumented/);
  });
});
