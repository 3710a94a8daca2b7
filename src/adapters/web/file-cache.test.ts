import { describe, expect, it } from 'vitest';
import { cachingFetch, openFileStore, validatorOf, type FileStore, type FileWriter, type StoredFile } from './file-cache.js';
import type { LoadProgress } from './load-progress.js';

/** A FileStore in memory, with the Cache API store's semantics: a file is there only once committed. */
class MemoryStore implements FileStore {
  readonly kind = 'memory' as const;
  readonly name = 'test@1';
  readonly files = new Map<string, { bytes: Uint8Array; validator: string }>();
  /** URLs whose writes were aborted (an unaborted write would leave a Cache API put pending). */
  readonly aborted: string[] = [];
  async get(url: string): Promise<StoredFile | undefined> {
    const file = this.files.get(url);
    return file && { body: new Response(file.bytes as Uint8Array<ArrayBuffer>).body!, size: file.bytes.byteLength, validator: file.validator };
  }
  async put(url: string, validator: string): Promise<FileWriter> {
    const chunks: Uint8Array[] = [];
    return {
      write: async (chunk) => void chunks.push(chunk),
      commit: async () => void this.files.set(url, { bytes: new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer()), validator }),
      abort: async () => void this.aborted.push(url),
    };
  }
  async delete(url: string): Promise<void> {
    this.files.delete(url);
  }
}

/** A server of one file per URL, with an ETag, recording each request; `offline` makes every fetch throw. */
function origin(files: Record<string, { body: Uint8Array; etag?: string }>) {
  const requests: string[] = [];
  const state = { offline: false };
  const fetcher = async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? 'GET';
    requests.push(`${method} ${new URL(url).pathname}`);
    if (state.offline) throw new TypeError('Failed to fetch');
    const file = files[url];
    if (!file) return new Response('not found', { status: 404 });
    const headers: Record<string, string> = { 'content-length': String(file.body.byteLength) };
    if (file.etag) headers.etag = file.etag;
    // A body in 1 KB chunks, as a network gives it.
    let at = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= file.body.byteLength) return controller.close();
        controller.enqueue(file.body.slice(at, (at += 1024)));
      },
    });
    return new Response(method === 'HEAD' ? null : body, { headers });
  };
  return { fetcher, requests, state };
}

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
const URL_A = 'https://models.example/m/onnx/model.onnx';

describe('cachingFetch', () => {
  it('downloads a file once, streaming it into the store, and then reads it from there after a HEAD', async () => {
    const server = origin({ [URL_A]: { body: bytes(5000), etag: '"v1"' } });
    const store = new MemoryStore();
    const events: LoadProgress[] = [];
    const fetch = cachingFetch(server.fetcher, store, (e) => events.push(e));

    const first = await fetch(URL_A);
    expect(store.files.size).toBe(0); // stored as it is read, not before
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(bytes(5000));
    expect(store.files.get(URL_A)).toEqual({ bytes: bytes(5000), validator: 'etag "v1"' });
    expect(events.at(0)).toEqual({
      stage: 'download',
      url: URL_A,
      file: 'onnx/model.onnx',
      source: 'network',
      loaded: 0,
      total: 5000,
      done: false,
      message: 'Reading onnx/model.onnx from the network: 0.00 of 0.00 MB',
    });
    expect(events.at(-1)).toMatchObject({ source: 'network', loaded: 5000, done: true, message: 'Read onnx/model.onnx (0.00 MB) from the network' });

    events.length = 0;
    const second = await fetch(URL_A);
    expect(second.headers.get('content-length')).toBe('5000');
    expect(new Uint8Array(await second.arrayBuffer())).toEqual(bytes(5000));
    expect(server.requests).toEqual(['GET /m/onnx/model.onnx', 'HEAD /m/onnx/model.onnx']);
    expect(events.at(-1)).toMatchObject({ source: 'cache', loaded: 5000, total: 5000, done: true });
  });

  it('downloads a file again when its ETag changed, replacing the copy', async () => {
    const files = { [URL_A]: { body: bytes(3000, 1), etag: '"v1"' } };
    const server = origin(files);
    const store = new MemoryStore();
    const fetch = cachingFetch(server.fetcher, store, () => {});
    await (await fetch(URL_A)).arrayBuffer();
    files[URL_A] = { body: bytes(2000, 2), etag: '"v2"' };
    expect(new Uint8Array(await (await fetch(URL_A)).arrayBuffer())).toEqual(bytes(2000, 2));
    expect(store.files.get(URL_A)).toEqual({ bytes: bytes(2000, 2), validator: 'etag "v2"' });
    expect(server.requests).toEqual(['GET /m/onnx/model.onnx', 'HEAD /m/onnx/model.onnx', 'GET /m/onnx/model.onnx']);
  });

  it('uses the copy when the network fails (offline), and does not check at all without revalidate', async () => {
    const server = origin({ [URL_A]: { body: bytes(1500), etag: '"v1"' } });
    const store = new MemoryStore();
    await (await cachingFetch(server.fetcher, store, () => {})(URL_A)).arrayBuffer();
    server.state.offline = true;
    expect(new Uint8Array(await (await cachingFetch(server.fetcher, store, () => {})(URL_A)).arrayBuffer())).toEqual(bytes(1500));
    server.state.offline = false;
    server.requests.length = 0;
    await (await cachingFetch(server.fetcher, store, () => {}, { revalidate: false })(URL_A)).arrayBuffer();
    expect(server.requests).toEqual([]);
  });

  it('drops the copy of a file the server no longer has: the GET then answers 404', async () => {
    const files: Record<string, { body: Uint8Array; etag?: string }> = { [URL_A]: { body: bytes(100), etag: '"v1"' } };
    const server = origin(files);
    const store = new MemoryStore();
    const fetch = cachingFetch(server.fetcher, store, () => {});
    await (await fetch(URL_A)).arrayBuffer();
    delete files[URL_A];
    expect((await fetch(URL_A)).status).toBe(404);
    expect(store.files.size).toBe(0);
  });

  it('stores nothing of a read that is cancelled (a model over the budget) or fails, and passes errors and non-GETs through', async () => {
    const server = origin({ [URL_A]: { body: bytes(10_000), etag: '"v1"' } });
    const store = new MemoryStore();
    const fetch = cachingFetch(server.fetcher, store, () => {});
    const reader = (await fetch(URL_A)).body!.getReader();
    await reader.read();
    await reader.cancel();
    expect(store.files.size).toBe(0);
    expect(store.aborted).toEqual([URL_A]);
    expect((await fetch('https://models.example/missing.json')).status).toBe(404);
    expect(store.files.size).toBe(0);
    expect((await fetch(URL_A, { method: 'HEAD' })).headers.get('etag')).toBe('"v1"');

    const broken = cachingFetch(
      async () => new Response(new ReadableStream({ pull: (c) => c.error(new Error('connection reset')) }), { headers: { etag: '"x"' } }),
      store,
      () => {},
    );
    await expect((await broken(URL_A)).arrayBuffer()).rejects.toThrow(/connection reset/);
    expect(store.files.size).toBe(0);
    expect(store.aborted).toEqual([URL_A, URL_A]);
  });

  it('stores a file whose reader stops once it has the declared length, without waiting for the end (as readGgufStream does)', async () => {
    const server = origin({ [URL_A]: { body: bytes(3000), etag: '"v1"' } });
    const store = new MemoryStore();
    const events: LoadProgress[] = [];
    const reader = (await cachingFetch(server.fetcher, store, (e) => events.push(e))(URL_A)).body!.getReader();
    let read = 0;
    while (read < 3000) read += (await reader.read()).value!.byteLength;
    await reader.cancel();
    expect(store.files.get(URL_A)).toEqual({ bytes: bytes(3000), validator: 'etag "v1"' });
    expect(store.aborted).toEqual([]);
    expect(events.at(-1)).toMatchObject({ loaded: 3000, done: true });
  });

  it('does not store a body shorter than its Content-Length', async () => {
    const store = new MemoryStore();
    const events: LoadProgress[] = [];
    const short = cachingFetch(
      async () => new Response(bytes(100), { headers: { 'content-length': '500', etag: '"x"' } }),
      store,
      (e) => events.push(e),
    );
    expect((await (await short(URL_A)).arrayBuffer()).byteLength).toBe(100);
    expect(store.files.size).toBe(0);
    expect(store.aborted).toEqual([URL_A]);
    expect(events.filter((e) => e.stage === 'cache')).toEqual([
      { stage: 'cache', message: 'Not caching onnx/model.onnx: 100 bytes of the 500 announced' },
    ]);
  });

  it('reports a store that fails to write, and still delivers the file', async () => {
    const server = origin({ [URL_A]: { body: bytes(2048), etag: '"v1"' } });
    const store = new MemoryStore();
    store.put = async () => ({
      write: () => Promise.reject(new Error('QuotaExceededError')),
      commit: async () => {},
      abort: async () => {},
    });
    const events: LoadProgress[] = [];
    const body = new Uint8Array(await (await cachingFetch(server.fetcher, store, (e) => events.push(e))(URL_A)).arrayBuffer());
    expect(body).toEqual(bytes(2048));
    expect(events.filter((e) => e.stage === 'cache')).toEqual([{ stage: 'cache', message: 'Not caching onnx/model.onnx: QuotaExceededError' }]);
  });

  it('without a store, only reports progress', async () => {
    const server = origin({ [URL_A]: { body: bytes(600_000) } });
    const events: LoadProgress[] = [];
    await (await cachingFetch(server.fetcher, undefined, (e) => events.push(e))(URL_A)).arrayBuffer();
    const loaded = events.map((e) => (e as { loaded: number }).loaded);
    expect(loaded[0]).toBe(0);
    expect(loaded.at(-1)).toBe(600_000);
    expect(loaded.length).toBeGreaterThan(2); // every 256 KB at least
    expect(loaded.length).toBeLessThan(60);
    expect(server.requests).toEqual(['GET /m/onnx/model.onnx']);
  });
});

describe('validatorOf', () => {
  it('is the ETag, else the size and Last-Modified, else empty', () => {
    expect(validatorOf(new Headers({ etag: 'W/"abc"', 'content-length': '5' }))).toBe('etag W/"abc"');
    expect(validatorOf(new Headers({ 'content-length': '5', 'last-modified': 'Tue, 01 Dec 2026 00:00:00 GMT' }))).toBe(
      'size 5, modified Tue, 01 Dec 2026 00:00:00 GMT',
    );
    expect(validatorOf(new Headers({ 'content-length': '5', 'content-encoding': 'gzip' }))).toBe('');
    expect(validatorOf(new Headers())).toBe('');
  });
});

describe('openFileStore', () => {
  /** A CacheStorage with named caches (only their names matter here). */
  function fakeCaches(names: string[]) {
    const open = new Set(names);
    return {
      names: open,
      keys: async () => [...open],
      delete: async (name: string) => open.delete(name),
      open: async (name: string) => {
        open.add(name);
        return {} as Cache;
      },
    };
  }

  it('opens <name>@<version> in the Cache API and deletes the other versions of that name only', async () => {
    const caches = fakeCaches(['edgellm@0.0.9', 'edgellm@0.1.0', 'other-app', 'mine@0.0.1']);
    const { store, message } = await openFileStore('0.1.0', {}, { caches });
    expect(store).toMatchObject({ kind: 'cache-api', name: 'edgellm@0.1.0' });
    expect([...caches.names].sort()).toEqual(['edgellm@0.1.0', 'mine@0.0.1', 'other-app']);
    expect(message).toBe('Caching model files in the Cache API as "edgellm@0.1.0"; deleted the cache of another version (edgellm@0.0.9)');
    expect((await openFileStore('0.1.0', { name: 'mine' }, { caches })).store?.name).toBe('mine@0.1.0');
    expect(caches.names.has('mine@0.0.1')).toBe(false);
  });

  it('says why when there is no store, and refuses a name that would break the version key', async () => {
    expect(await openFileStore('0.1.0', {}, {})).toEqual({
      message: 'Not caching model files: this host has neither the Cache API nor the origin private file system',
    });
    expect(await openFileStore('0.1.0', { store: 'opfs' }, { caches: fakeCaches([]) })).toEqual({
      message: 'Not caching model files: this host has no origin private file system',
    });
    const failing = { ...fakeCaches([]), keys: () => Promise.reject(new Error('SecurityError')) };
    expect((await openFileStore('0.1.0', {}, { caches: failing })).message).toBe('Not caching model files: the Cache API failed (SecurityError)');
    await expect(openFileStore('0.1.0', { name: 'a@b' }, {})).rejects.toThrow(/may not contain "@"/);
  });
});
