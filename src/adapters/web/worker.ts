/**
 * The Cloudflare Worker: every request is forwarded to one Durable Object per model, which holds
 * the model and the engine. Why not serve from the Worker isolate itself: a Worker's timers and
 * promises belong to the request that created them, so the shared decode loop would die with
 * whichever request started it (a client that disconnects stalls every other stream). A Durable
 * Object outlives its requests, and one instance also means one KV cache and one set of
 * /generate sessions for all clients.
 * @module
 */
import wasmModule from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';
import { InferenceError, toErrorResponse } from '../../errors.js';
import { parseShardCount, pickShard, shardName } from './shards.js';
import { webAppOptionsFromEnv, type WorkerEnv } from './worker-env.js';
import { createWebApp, loadError, type WebApp } from './workerd.js';

interface DurableObjectNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

export interface EdgellmWorkerEnv extends WorkerEnv {
  /** The EdgellmModel Durable Object namespace (wrangler.toml [[durable_objects.bindings]]). */
  EDGELLM?: DurableObjectNamespace;
  /**
   * Durable Objects per model (default 1). Each holds its own copy of the model, batch, KV cache
   * and sessions; a session stays on one (see shards.ts).
   */
  SHARDS?: string;
}


/** Holds the app; builds it on the first request (workerd allows no fetch at start-up). */
export class EdgellmModel {
  private app: WebApp | undefined;

  constructor(
    _state: unknown,
    private readonly env: WorkerEnv,
  ) {}

  async fetch(request: Request): Promise<Response> {
    if (!this.app) {
      try {
        this.app = createWebApp({
          ...webAppOptionsFromEnv(this.env),
          wasm: { module: wasmModule },
          durableObject: true,
          onError: (error) => console.error(error),
        });
      } catch (error) {
        return toErrorResponse(loadError(error));
      }
    }
    await this.app.ready.catch(() => {}); // a failed load answers every request with its reason
    return this.app.fetch(request);
  }
}

export default {
  async fetch(request: Request, env: EdgellmWorkerEnv): Promise<Response> {
    if (!env.EDGELLM) {
      return toErrorResponse(new InferenceError(503, 'The EDGELLM Durable Object binding is missing: bind class EdgellmModel as EDGELLM (see wrangler.toml).', { code: 'model_load_failed' }));
    }
    let shard: number;
    try {
      shard = await pickShard(request, parseShardCount(env.SHARDS));
    } catch (error) {
      return toErrorResponse(error);
    }
    const response = await env.EDGELLM.get(env.EDGELLM.idFromName(shardName(env.MODEL ?? '', shard))).fetch(request);
    // Which shard answered, for logs and tests; a Durable Object's response headers may be immutable.
    const headers = new Headers(response.headers);
    headers.set('x-edgellm-shard', String(shard));
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  },
};
