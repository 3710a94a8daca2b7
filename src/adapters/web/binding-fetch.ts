/**
 * A Workers binding (static assets or a service: a Fetcher; an R2 bucket; a KV namespace) as a
 * fetch function, so the model loader only ever speaks fetch. The URL's path is the key:
 * `https://models/karpathy__stories260K/config.json` reads `karpathy__stories260K/config.json`.
 * @module
 */

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Static assets (`[assets] binding`) and service bindings. */
export interface FetcherBinding {
  fetch: FetchLike;
}
export interface R2BucketBinding {
  head(key: string): Promise<unknown>;
  get(key: string): Promise<{ body: ReadableStream<Uint8Array>; size: number } | null>;
}
export interface KvNamespaceBinding {
  getWithMetadata(key: string, options?: unknown): Promise<unknown>;
  get(key: string, options: { type: 'stream' }): Promise<ReadableStream<Uint8Array> | null>;
}
export type ModelBinding = FetcherBinding | R2BucketBinding | KvNamespaceBinding;

/** The origin model files appear under when they come from a binding (never fetched). */
export const BINDING_ORIGIN = 'https://models.binding/';

export function bindingKind(binding: unknown): 'r2' | 'kv' | 'fetcher' | undefined {
  const b = binding as Record<string, unknown> | null;
  if (!b || (typeof b !== 'object' && typeof b !== 'function')) return undefined;
  // First: a service or assets binding is an RPC stub on which every property looks like a method.
  if (typeof b.fetch === 'function') return 'fetcher';
  if (typeof b.head === 'function' && typeof b.get === 'function') return 'r2';
  if (typeof b.getWithMetadata === 'function' && typeof b.get === 'function') return 'kv';
  return undefined;
}

const keyOf = (input: string | URL | Request) =>
  decodeURIComponent(new URL(typeof input === 'string' || input instanceof URL ? input : input.url).pathname).replace(/^\/+/, '');

const notFound = (key: string) => new Response(`${key} not found`, { status: 404 });

/**
 * A fetch over a Workers binding (static assets, R2 or KV) holding model directories.
 * @example
 * const runtime = await createWebRuntime({ model: 'stories', fetch: bindingFetch(env.MODELS), baseUrl: 'https://models/' });
 */
export function bindingFetch(binding: ModelBinding): FetchLike {
  switch (bindingKind(binding)) {
    case 'r2': {
      const bucket = binding as R2BucketBinding;
      return async (input) => {
        const key = keyOf(input);
        const object = await bucket.get(key);
        return object ? new Response(object.body, { headers: { 'content-length': String(object.size) } }) : notFound(key);
      };
    }
    case 'kv': {
      const kv = binding as KvNamespaceBinding;
      return async (input) => {
        const key = keyOf(input);
        const body = await kv.get(key, { type: 'stream' });
        return body ? new Response(body) : notFound(key);
      };
    }
    case 'fetcher': {
      const fetcher = binding as FetcherBinding;
      return (input, init) => fetcher.fetch(new URL(`/${keyOf(input).split('/').map(encodeURIComponent).join('/')}`, BINDING_ORIGIN), init);
    }
    default:
      throw new TypeError('The models binding is neither static assets / a service (fetch), an R2 bucket nor a KV namespace.');
  }
}
