import { describe, expect, it } from 'vitest';
import { BINDING_ORIGIN, bindingFetch, bindingKind } from './binding-fetch.js';

const FILES: Record<string, string> = { 'my model/config.json': '{"a":1}' };
const stream = (text: string) => new Response(text).body!;

const r2 = {
  head: async () => null,
  get: async (key: string) => (key in FILES ? { body: stream(FILES[key]), size: FILES[key].length } : null),
};
const kv = {
  getWithMetadata: async () => null,
  get: async (key: string) => (key in FILES ? stream(FILES[key]) : null),
};
const seen: string[] = [];
const fetcher = {
  fetch: async (input: string | URL | Request) => {
    const url = new URL(String(input));
    seen.push(url.href);
    const key = decodeURIComponent(url.pathname.slice(1));
    return key in FILES ? new Response(FILES[key]) : new Response('', { status: 404 });
  },
};
// Service and assets bindings are RPC stubs: every property looks like a function.
const rpcStub = new Proxy(fetcher, { get: (target, key) => (key in target ? target[key as 'fetch'] : () => {}) });

describe('bindingKind', () => {
  it('tells Fetchers (even RPC stubs), R2 buckets and KV namespaces apart', () => {
    expect(bindingKind(fetcher)).toBe('fetcher');
    expect(bindingKind(rpcStub)).toBe('fetcher');
    expect(bindingKind(r2)).toBe('r2');
    expect(bindingKind(kv)).toBe('kv');
    expect(bindingKind({})).toBeUndefined();
    expect(bindingKind('MODELS')).toBeUndefined();
  });
});

describe('bindingFetch', () => {
  it.each([
    ['r2', r2],
    ['kv', kv],
    ['fetcher', fetcher],
    ['rpc stub', rpcStub],
  ])('reads <model>/<file> from %s by the URL path, and answers 404 for a missing key', async (_kind, binding) => {
    const get = bindingFetch(binding);
    const found = await get(new URL('my%20model/config.json', BINDING_ORIGIN));
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual({ a: 1 });
    expect((await get(`${BINDING_ORIGIN}my%20model/missing.json`)).status).toBe(404);
  });

  it('gives R2 objects their size as content-length (so the memory budget can refuse early)', async () => {
    const response = await bindingFetch(r2)(`${BINDING_ORIGIN}my%20model/config.json`);
    expect(response.headers.get('content-length')).toBe('7');
  });

  it('refuses anything that is not a binding', () => {
    expect(() => bindingFetch({} as never)).toThrow(/neither static assets/);
  });
});
