/**
 * A persistent cache for model files and onnxruntime-web's wasm, so a page reload or a Service
 * Worker restart does not download them again. Files live in the Cache API (or, where it is
 * absent, the origin private file system) under one store per edgellm version, `<name>@<version>`:
 * opening a store deletes the stores of other versions. Inside a store a file is keyed by its URL
 * and remembers its validator (ETag, else size and Last-Modified); before a cached copy is used a
 * HEAD request compares validators (`revalidate`, default on), so a file changed on the server is
 * downloaded again, and a network that fails (offline) uses the copy. Files are streamed into the
 * store while the loader reads them: nothing is held twice in memory, and a file whose read is
 * cancelled (a model over the memory budget) or fails is not stored.
 * @module
 */
import type { FetchLike } from './binding-fetch.js';
import { downloadMessage, shortName, type ProgressListener } from './load-progress.js';

export interface StoredFile {
  body: ReadableStream<Uint8Array>;
  size?: number;
  validator: string;
}

/** Streams one file into a store: `commit` stores it (atomically), `abort` drops it. */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface FileStore {
  readonly kind: 'cache-api' | 'opfs' | 'memory';
  /** `<name>@<version>` */
  readonly name: string;
  get(url: string): Promise<StoredFile | undefined>;
  put(url: string, validator: string, size: number | undefined): Promise<FileWriter>;
  delete(url: string): Promise<void>;
}

export interface FileCacheOptions {
  /** The store's name, before `@<version>` (default `edgellm`). */
  name?: string;
  /** Which store; default the Cache API where there is one, else OPFS. */
  store?: 'cache-api' | 'opfs';
  /** Check each cached file with a HEAD request before using it (default true). */
  revalidate?: boolean;
}

const VALIDATOR_HEADER = 'x-edgellm-validator';

/** What identifies a version of a file: its ETag, else its size and Last-Modified; '' when neither is sent. */
export function validatorOf(headers: Headers): string {
  const etag = headers.get('etag');
  if (etag) return `etag ${etag}`;
  const size = headers.get('content-encoding') ? null : headers.get('content-length');
  const modified = headers.get('last-modified');
  return size || modified ? `size ${size ?? '?'}, modified ${modified ?? '?'}` : '';
}

// ---------------------------------------------------------------------------------------------
// Stores

interface CacheStorageLike {
  open(name: string): Promise<Cache>;
  keys(): Promise<string[]>;
  delete(name: string): Promise<boolean>;
}

export class CacheApiStore implements FileStore {
  readonly kind = 'cache-api' as const;
  constructor(
    private readonly cache: Cache,
    readonly name: string,
  ) {}

  async get(url: string): Promise<StoredFile | undefined> {
    const response = await this.cache.match(url);
    if (!response?.body) return undefined;
    const size = Number(response.headers.get('content-length') ?? NaN);
    return { body: response.body, size: Number.isFinite(size) ? size : undefined, validator: response.headers.get(VALIDATOR_HEADER) ?? '' };
  }

  async put(url: string, validator: string, size: number | undefined): Promise<FileWriter> {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const headers: Record<string, string> = { [VALIDATOR_HEADER]: validator, 'content-type': 'application/octet-stream' };
    if (size !== undefined) headers['content-length'] = String(size);
    const stored = this.cache.put(url, new Response(readable, { headers }));
    stored.catch(() => {}); // awaited by commit; an abort rejects it on purpose
    const writer = writable.getWriter();
    return {
      write: (chunk) => writer.write(chunk),
      commit: async () => {
        await writer.close();
        await stored;
      },
      abort: async () => {
        await writer.abort(new Error('not stored')).catch(() => {});
        await stored.catch(() => {});
      },
    };
  }

  async delete(url: string): Promise<void> {
    await this.cache.delete(url);
  }
}

/** The origin private file system: a file per URL (named by its SHA-256) and a `.json` beside it. */
export class OpfsStore implements FileStore {
  readonly kind = 'opfs' as const;
  constructor(
    private readonly dir: FileSystemDirectoryHandle,
    readonly name: string,
  ) {}

  private async key(url: string): Promise<string> {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(url));
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }

  async get(url: string): Promise<StoredFile | undefined> {
    const key = await this.key(url);
    try {
      const meta = JSON.parse(await (await (await this.dir.getFileHandle(`${key}.json`)).getFile()).text());
      const file = await (await this.dir.getFileHandle(key)).getFile();
      if (meta.url !== url || meta.size !== file.size) return undefined;
      return { body: file.stream() as ReadableStream<Uint8Array>, size: file.size, validator: String(meta.validator ?? '') };
    } catch {
      return undefined; // not there (NotFoundError), or half written
    }
  }

  async put(url: string, validator: string): Promise<FileWriter> {
    const key = await this.key(url);
    // The description goes first, so a replaced file is never read with its predecessor's.
    await this.dir.removeEntry(`${key}.json`).catch(() => {});
    const writable = await (await this.dir.getFileHandle(key, { create: true })).createWritable();
    let size = 0;
    return {
      write: async (chunk) => {
        size += chunk.byteLength;
        await writable.write(chunk as Uint8Array<ArrayBuffer>);
      },
      commit: async () => {
        await writable.close();
        const meta = await (await this.dir.getFileHandle(`${key}.json`, { create: true })).createWritable();
        await meta.write(JSON.stringify({ url, validator, size }));
        await meta.close();
      },
      abort: () => writable.abort().catch(() => {}),
    };
  }

  async delete(url: string): Promise<void> {
    const key = await this.key(url);
    await this.dir.removeEntry(`${key}.json`).catch(() => {});
    await this.dir.removeEntry(key).catch(() => {});
  }
}

/**
 * Opens `<name>@<version>` in the store asked for (or the first there is), deleting the stores
 * of other versions under the same name. Undefined, with the reason, when this host has neither.
 */
export async function openFileStore(
  version: string,
  options: FileCacheOptions = {},
  host: { caches?: CacheStorageLike; storage?: { getDirectory?(): Promise<FileSystemDirectoryHandle> } } = defaultHost(),
): Promise<{ store?: FileStore; message: string }> {
  const base = options.name ?? 'edgellm';
  if (base.includes('@') || base.includes('/')) throw new Error(`cache name "${base}" may not contain "@" or "/"`);
  const name = `${base}@${version}`;
  const kind = options.store ?? (host.caches ? 'cache-api' : host.storage?.getDirectory ? 'opfs' : undefined);
  const evicted: string[] = [];
  try {
    if (kind === 'cache-api' && host.caches) {
      for (const other of await host.caches.keys()) {
        if (other.startsWith(`${base}@`) && other !== name && (await host.caches.delete(other))) evicted.push(other);
      }
      const store = new CacheApiStore(await host.caches.open(name), name);
      return { store, message: `Caching model files in the Cache API as "${name}"${evictedNote(evicted)}` };
    }
    if (kind === 'opfs' && host.storage?.getDirectory) {
      const root = await host.storage.getDirectory();
      for await (const other of (root as unknown as { keys(): AsyncIterable<string> }).keys()) {
        if (other.startsWith(`${base}@`) && other !== name) {
          await root.removeEntry(other, { recursive: true });
          evicted.push(other);
        }
      }
      const store = new OpfsStore(await root.getDirectoryHandle(name, { create: true }), name);
      return { store, message: `Caching model files in the origin private file system as "${name}"${evictedNote(evicted)}` };
    }
  } catch (error) {
    return {
      message: `Not caching model files: the ${kind === 'opfs' ? 'origin private file system' : 'Cache API'} failed (${(error as Error).message})`,
    };
  }
  if (options.store)
    return { message: `Not caching model files: this host has no ${options.store === 'opfs' ? 'origin private file system' : 'Cache API'}` };
  return { message: 'Not caching model files: this host has neither the Cache API nor the origin private file system' };
}

const evictedNote = (evicted: string[]) => (evicted.length ? `; deleted the cache of another version (${evicted.join(', ')})` : '');

function defaultHost() {
  const g = globalThis as { caches?: CacheStorageLike; navigator?: { storage?: { getDirectory?(): Promise<FileSystemDirectoryHandle> } } };
  const storage = g.navigator?.storage;
  return { caches: g.caches, storage: storage?.getDirectory ? { getDirectory: () => storage.getDirectory!() } : undefined };
}

// ---------------------------------------------------------------------------------------------
// The fetch in front of it

/**
 * A fetch whose GETs come from the store when it holds the file (still current, or the network
 * unreachable) and otherwise from the network, streamed into the store as they are read. Every
 * body read through it reports its progress. Without a store, only the progress.
 */
export function cachingFetch(
  fetcher: FetchLike,
  store: FileStore | undefined,
  onProgress: ProgressListener,
  options: { revalidate?: boolean } = {},
): FetchLike {
  const revalidate = options.revalidate ?? true;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    if (method !== 'GET') return fetcher(input, init);
    const cached = store && (await store.get(url).catch(() => undefined));
    if (cached) {
      const state = revalidate ? await check(fetcher, url, cached.validator) : 'current';
      if (state === 'current') {
        const headers: Record<string, string> = {};
        if (cached.size !== undefined) headers['content-length'] = String(cached.size);
        return new Response(relay(cached.body, url, 'cache', cached.size, onProgress), { status: 200, headers });
      }
      await cached.body.cancel().catch(() => {});
      await store!.delete(url).catch(() => {});
    }
    const response = await fetcher(input, init);
    if (!response.ok || !response.body) return response;
    const encoded = Boolean(response.headers.get('content-encoding'));
    const declared = Number(response.headers.get('content-length') ?? NaN);
    const total = !encoded && Number.isFinite(declared) ? declared : undefined;
    let writer: FileWriter | undefined;
    if (store) {
      try {
        writer = await store.put(url, validatorOf(response.headers), total);
      } catch (error) {
        onProgress({ stage: 'cache', message: `Not caching ${shortName(url)}: ${(error as Error).message}` });
      }
    }
    const body = relay(response.body, url, 'network', total, onProgress, writer);
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** current: use the copy; changed/gone: download again. A network failure or a server error keeps the copy. */
async function check(fetcher: FetchLike, url: string, validator: string): Promise<'current' | 'changed'> {
  let head: Response;
  try {
    head = await fetcher(url, { method: 'HEAD' });
  } catch {
    return 'current'; // offline: the copy is what there is
  }
  await head.body?.cancel().catch(() => {});
  if (head.status === 404 || head.status === 410) return 'changed'; // the GET then says it is gone
  if (!head.ok) return 'current';
  const now = validatorOf(head.headers);
  return !now || now === validator ? 'current' : 'changed';
}

/**
 * The body as it is read: progress events (at the start, every ~2% or 1 MiB, and at the end), and
 * each chunk into the writer, which is committed when the body ends and aborted if it fails or is
 * cancelled. The body ends only once the file is stored, so a loaded model is a cached model.
 */
function relay(
  source: ReadableStream<Uint8Array>,
  url: string,
  from: 'cache' | 'network',
  total: number | undefined,
  onProgress: ProgressListener,
  writer?: FileWriter,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  const file = shortName(url);
  const step = Math.max(256 * 1024, total ? total / 50 : 1024 * 1024);
  let loaded = 0;
  let reported = -1;
  let doneReported = false;
  const report = (done: boolean) => {
    reported = loaded;
    doneReported = done;
    onProgress({ stage: 'download', url, file, source: from, loaded, total, done, message: downloadMessage(file, from, loaded, total, done) });
  };
  const drop = async (why: unknown) => {
    const w = writer;
    writer = undefined;
    if (w) {
      await w.abort();
      if (why) onProgress({ stage: 'cache', message: `Not caching ${file}: ${(why as Error)?.message ?? why}` });
    }
  };
  /** The whole file was read: store it, and say so. */
  const finish = async () => {
    const w = writer;
    writer = undefined;
    if (w) {
      try {
        await w.commit();
      } catch (error) {
        onProgress({ stage: 'cache', message: `Not caching ${file}: ${(error as Error).message}` });
      }
    }
    if (!doneReported) report(true);
  };
  return new ReadableStream<Uint8Array>(
    {
      start: () => report(false),
      async pull(controller) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          await drop(undefined);
          controller.error(error);
          return;
        }
        if (result.done) {
          // Shorter than its Content-Length (a connection cut cleanly): delivered as it is, never stored.
          if (total !== undefined && loaded !== total) await drop(new Error(`${loaded} bytes of the ${total} announced`));
          await finish();
          controller.close();
          return;
        }
        loaded += result.value.byteLength;
        if (writer) await writer.write(result.value).catch(drop);
        // The declared length read: done now (a reader that stops here may start long work next).
        if (loaded === total) report(true);
        else if (loaded - reported >= step) report(false);
        controller.enqueue(result.value);
      },
      async cancel(reason) {
        // A reader that stops once it has the declared length (readGgufStream does) has the whole file.
        if (total !== undefined && loaded === total) {
          await finish();
          await reader.cancel(reason).catch(() => {});
          return;
        }
        await drop(undefined);
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
