import { describe, expect, it } from 'vitest';
import {
  createTransport, networkErrorDetail, normalizeUrl, parseErrorBody, serverError, ServerError, streamError, UnreachableError,
} from './transport.js';

describe('parseErrorBody', () => {
  it("reads OpenAI's, lmdeploy's and FastAPI's error bodies, and plain text", () => {
    expect(parseErrorBody('{"error":{"message":"Incorrect API key provided.","type":"authentication_error","code":"invalid_api_key"}}')).toEqual({
      message: 'Incorrect API key provided.',
      type: 'authentication_error',
      code: 'invalid_api_key',
    });
    expect(parseErrorBody('{"message":"Unsupported by turbomind.","type":"invalid_request_error","code":400,"object":"error"}')).toEqual({
      message: 'Unsupported by turbomind.',
      type: 'invalid_request_error',
      code: 400,
    });
    expect(parseErrorBody('{"detail":[{"loc":["body","prompt"],"msg":"field required"}]}').message).toBe(
      '[{"loc":["body","prompt"],"msg":"field required"}]',
    );
    expect(parseErrorBody('{"error":"model not found"}').message).toBe('model not found');
    expect(parseErrorBody('Bad Gateway\n')).toEqual({ message: 'Bad Gateway' });
    expect(parseErrorBody('')).toEqual({ message: 'no message' });
  });
});

describe('serverError', () => {
  it('gives the status, the type and the message in one line', () => {
    const error = serverError(409, '{"error":{"message":"Session 3 is busy.","type":"conflict_error","code":"session_busy"}}', false);
    expect(error.message).toBe('the server answered 409 conflict_error: Session 3 is busy.');
    expect(error).toMatchObject({ status: 409, type: 'conflict_error', code: 'session_busy' });
  });

  it('says how to give an API key on 401', () => {
    const body = '{"error":{"message":"Missing API key: send Authorization: Bearer <key>.","type":"authentication_error"}}';
    expect(serverError(401, body, false).message).toMatch(/Missing API key.*\(pass --api-key KEY or set EDGELLM_API_KEY\)$/);
    expect(serverError(401, body, true).message).toMatch(/\(check --api-key or EDGELLM_API_KEY\)$/);
  });
});

describe('streamError', () => {
  it('finds an error object sent inside a stream', () => {
    const error = streamError({ error: { message: 'The server had an error while generating.', type: 'server_error', code: null } });
    expect(error).toBeInstanceOf(ServerError);
    expect(error!.message).toBe('the server failed during the reply (server_error): The server had an error while generating.');
    expect(streamError({ error: { message: 'x', code: 500 } })!.status).toBe(500);
  });

  it('ignores ordinary values', () => {
    expect(streamError({ text: 'hi', tokens: 1 })).toBeUndefined();
    expect(streamError({ error: null })).toBeUndefined();
    expect(streamError(null)).toBeUndefined();
  });
});

describe('networkErrorDetail', () => {
  it('digs the system error code out of fetch failures', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(networkErrorDetail(new TypeError('fetch failed', { cause: refused }))).toBe('ECONNREFUSED');
    const aggregate = new AggregateError([refused], 'all addresses failed');
    expect(networkErrorDetail(new TypeError('fetch failed', { cause: aggregate }))).toBe('ECONNREFUSED');
  });

  it('falls back to the innermost message', () => {
    expect(networkErrorDetail(new TypeError('fetch failed', { cause: new Error('bad port') }))).toBe('bad port');
    expect(networkErrorDetail(new Error('boom'))).toBe('boom');
  });
});

describe('normalizeUrl', () => {
  it('adds http:// and drops trailing slashes, keeping a path', () => {
    expect(normalizeUrl('127.0.0.1:23333')).toBe('http://127.0.0.1:23333');
    expect(normalizeUrl('https://example.com/llm/')).toBe('https://example.com/llm');
  });

  it('refuses other schemes', () => {
    expect(() => normalizeUrl('ftp://example.com')).toThrow(/only http:\/\/ and https:\/\//);
  });
});

describe('createTransport', () => {
  it('sends JSON with the API key, and hands back accepted error statuses', async () => {
    const seen: Request[] = [];
    const transport = createTransport({
      url: 'localhost:8080/',
      apiKey: 'k1',
      fetch: async (input, init) => {
        seen.push(new Request(input, init));
        return new Response('{"status":"loading"}', { status: 503 });
      },
    });
    const response = await transport.request('/health', { accept: [503] });
    expect(response.status).toBe(503);
    await expect(transport.request('/generate', { body: { prompt: 'hi' } })).rejects.toThrow('the server answered 503: {"status":"loading"}');
    expect(seen[0].url).toBe('http://localhost:8080/health');
    expect(seen[0].method).toBe('GET');
    expect(seen[1].method).toBe('POST');
    expect(seen[1].headers.get('authorization')).toBe('Bearer k1');
    expect(seen[1].headers.get('content-type')).toBe('application/json');
    expect(await seen[1].json()).toEqual({ prompt: 'hi' });
  });

  it('says the server cannot be reached, with the reason', async () => {
    const transport = createTransport({
      url: 'http://127.0.0.1:9',
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) });
      },
    });
    const error = await transport.request('/health').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreachableError);
    expect((error as Error).message).toBe('cannot reach http://127.0.0.1:9: is `edgellm serve` running? (ECONNREFUSED)');
  });

  it('lets an abort through as an abort', async () => {
    const controller = new AbortController();
    controller.abort();
    const transport = createTransport({
      url: 'http://127.0.0.1:9',
      fetch: async (_input, init) => {
        throw Object.assign(new Error('aborted'), { name: 'AbortError', signal: init?.signal });
      },
    });
    const error = await transport.request('/health', { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(UnreachableError);
    expect((error as Error).name).toBe('AbortError');
  });
});
