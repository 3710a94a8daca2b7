/**
 * Model files through fetch: a directory URL (absolute, or relative to a base URL) whose files
 * are read with the host's fetch, a user's fetch, or a Workers binding made into one. ONNX files
 * are read under a memory budget, so a model too large for the host is refused before it is
 * downloaded whole (Miniflare does not enforce Cloudflare's 128 MB isolate limit; this does).
 * @module
 */
import { InferenceError } from '../../errors.js';
import { concatBytes } from '../../internal/bytes.js';
import type { FetchLike } from './binding-fetch.js';
import type { MemoryCost } from './memory-estimate.js';

/** Cloudflare Workers give an isolate 128 MB: the default memory budget in workerd. */
export const DEFAULT_MAX_MODEL_BYTES = 128 * 1024 * 1024;

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} B`;
}

/** The model directory's URL, with a trailing slash. */
export function modelDirUrl(model: string, baseUrl?: string | URL): string {
  const dir = model.endsWith('/') ? model : `${model}/`;
  if (/^[a-z][a-z\d+.-]*:/i.test(model)) return new URL(dir).href;
  const base = baseUrl ?? (globalThis as { location?: { href: string } }).location?.href;
  if (!base) throw new Error(`Model "${model}" is not a URL and there is no base URL to resolve it against: pass baseUrl, or a full URL.`);
  return new URL(dir, base).href;
}

/**
 * Counts what the files read through it will cost in memory against one limit: each file's bytes
 * times its cost (onnxruntime-web's wasm memory grows 3-5x an ONNX file; see memory-estimate.ts).
 */
export class MemoryBudget {
  /** Bytes of files read. */
  used = 0;
  /** Estimated memory those files need. */
  estimated = 0;
  constructor(readonly limit = DEFAULT_MAX_MODEL_BYTES) {}

  /** Reads a body, refusing it (before reading, when its length is known) if its estimate would exceed the budget. */
  async read(response: Response, name: string, cost: MemoryCost = { perFileByte: 1, baseBytes: 0 }): Promise<Uint8Array> {
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && !response.headers.get('content-encoding')) this.check(declared, name, cost, response);
    const reader = response.body!.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.byteLength;
      // Over budget: keep counting, to report the real size, but hold nothing.
      if (this.estimate(size, cost) > this.limit) chunks.length = 0;
      else chunks.push(value);
    }
    this.check(size, name, cost);
    this.estimated = this.estimate(size, cost);
    this.used += size;
    return concatBytes(chunks, size);
  }

  /**
   * Counts a cost the caller estimated itself (a GGUF: the file, the graph converted from it and the
   * wasm growth; see memory-estimate.ts), refusing it, with `how` in the message, over the budget.
   */
  reserve(name: string, fileBytes: number, cost: { baseBytes: number; bytes: number }, how: string, advice?: string): void {
    const estimate = Math.max(this.estimated, cost.baseBytes) + cost.bytes;
    if (estimate > this.limit) throw this.tooLarge(name, fileBytes, estimate, how, advice);
    this.estimated = estimate;
    this.used += fileBytes;
  }

  private estimate(size: number, cost: MemoryCost): number {
    return Math.max(this.estimated, cost.baseBytes) + size * cost.perFileByte;
  }

  private check(size: number, name: string, cost: MemoryCost, response?: Response): void {
    const estimate = this.estimate(size, cost);
    if (estimate <= this.limit) return;
    void response?.body?.cancel();
    const how =
      cost.perFileByte === 1 && cost.baseBytes === 0
        ? 'its size'
        : `${cost.perFileByte} x its size: onnxruntime-web's wasm memory grows ${(cost.perFileByte - 1).toFixed(1)} x an ONNX file of this dtype, ` +
          `plus the file's copy in JS, plus ${formatBytes(cost.baseBytes)} the wasm memory starts with`;
    throw this.tooLarge(name, size, estimate, how);
  }

  private tooLarge(name: string, size: number, estimate: number, how: string, advice = 'serve a smaller or quantized model (dtype q8 or q4)'): InferenceError {
    const sofar = this.used ? `, after ${formatBytes(this.used)} of other model files` : '';
    return new InferenceError(
      503,
      `${name} is ${formatBytes(size)}${sofar}: loading it needs about ${formatBytes(estimate)} of memory (${how}), ` +
        `more than the memory budget of ${formatBytes(this.limit)}. A Cloudflare Worker isolate has 128 MB in all: ` +
        `${advice}, or raise maxModelBytes (MAX_MODEL_BYTES) on a host with more memory.`,
      { code: 'model_too_large' },
    );
  }
}

/** One model directory. */
export class ModelFiles {
  readonly url: string;

  constructor(
    readonly name: string,
    baseUrl: string | URL | undefined,
    private readonly fetcher: FetchLike = (input, init) => fetch(input, init),
  ) {
    this.url = modelDirUrl(name, baseUrl);
  }

  /** The file's response, or undefined for a 404 when it is optional. */
  async get(path: string, optional = false): Promise<Response | undefined> {
    const url = new URL(path, this.url).href;
    let response: Response;
    try {
      response = await this.fetcher(url);
    } catch (error) {
      throw new Error(`Could not fetch ${path} of model ${this.name} from ${url}: ${(error as Error).message}`, { cause: error });
    }
    if (response.ok) return response;
    await response.body?.cancel();
    if (response.status === 404 && optional) return undefined;
    throw new Error(`Could not fetch ${path} of model ${this.name} from ${url}: HTTP ${response.status}${response.status === 404 ? ' (not found)' : ''}.`);
  }

  async json(path: string, optional = false): Promise<Record<string, any>> {
    const response = await this.get(path, optional);
    if (!response) return {};
    try {
      return await response.json();
    } catch (error) {
      throw new Error(`${path} of model ${this.name} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
  }
}
