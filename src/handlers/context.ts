/**
 * What every handler receives besides the request.
 * @module
 */
import type { InferenceRuntime } from '../runtime/types.js';

export interface HandlerContext {
  runtime: InferenceRuntime;
  maxBodyBytes: number;
  /** Longest wait for a request body in ms (408 after it); 0 or undefined = no limit. */
  requestTimeoutMs?: number;
  /** Unexpected errors (500s) are reported here, e.g. to a logger. */
  onError?: (error: unknown) => void;
  /** Where the app is mounted ('' or e.g. '/llm'), for links in pages and the OpenAPI document. */
  basePath?: string;
  /** Whether requests need a bearer key (the OpenAPI document says so). */
  authRequired?: boolean;
  /** Static files by name (Swagger UI's), from the host: a package directory, a Worker assets binding. */
  docsAssets?: AssetSource;
}

/** A static file by name, or undefined when the host has no such file. */
export type AssetSource = (name: string) => Promise<Response | undefined> | Response | undefined;

export type Handler = (request: Request, ctx: HandlerContext) => Promise<Response>;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** OpenAI-style ids: `cmpl-…`, `chatcmpl-…`. */
export function newId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(22));
  return `${prefix}-${Array.from(bytes, (b) => ALPHABET[b % ALPHABET.length]).join('')}`;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
