/**
 * edgellm for Cloudflare Workers (the `workerd` export condition of `edgellm/web`): the same API
 * as the browser entry on onnxruntime-web's wasm build only (workerd has no WebGPU). Pass the
 * compiled wasm: `import wasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm'` and
 * `wasm: { module: wasm }` (workerd cannot compile wasm from bytes).
 * @module
 */
import * as ort from 'onnxruntime-web/wasm';
import { DEFAULT_MAX_MODEL_BYTES } from './model-files.js';
import { createWebRuntimeOn, type OrtLoader, type OrtWeb, type WebRuntime, type WebRuntimeOptions } from './runtime.js';
import { InferenceError, toErrorResponse } from '../../errors.js';
import { createWebAppOn, type WebApp, type WebAppOptions } from './web-app.js';

export * from './exports.js';

const loadOrt: OrtLoader = async () => ort as unknown as OrtWeb;

export function createWebRuntime(options: WebRuntimeOptions): Promise<WebRuntime> {
  // A Worker isolate has 128 MB for everything: the model's estimate must fit in it by default.
  return createWebRuntimeOn(loadOrt, { ...options, maxModelBytes: options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES });
}

export interface WorkerdWebAppOptions extends WebAppOptions {
  /**
   * The app lives in a Durable Object (edgellm/worker's EdgellmModel, or one of your own). In a
   * plain Worker it refuses to serve: see `plainWorkerError`.
   */
  durableObject?: boolean;
}

/** True inside workerd (Cloudflare Workers, Miniflare). */
export const inWorkerd = () => (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers';

/**
 * Why a plain Worker cannot host the engine: its timers and promises belong to the request that
 * made them, so the decode loop shared by all requests stops (or hangs the others) when the request
 * that started it ends. A Durable Object outlives its requests.
 */
export function plainWorkerError(): InferenceError {
  return new InferenceError(
    503,
    "edgellm/web cannot serve from a plain Worker: a Worker's timers and promises belong to the request that made them, so the " +
      'decode loop all requests share stalls when that request ends, and concurrent streams hang. Serve it from a Durable Object: ' +
      'export the EdgellmModel class of edgellm/worker and forward requests to it (README: Deploy to Cloudflare), or, inside a Durable ' +
      'Object of your own, create the app with durableObject: true.',
    { code: 'unsupported_host' },
  );
}

export function createWebApp(options: WorkerdWebAppOptions): WebApp {
  if (!options.durableObject && inWorkerd()) {
    const error = plainWorkerError();
    const ready = Promise.reject(error);
    ready.catch(() => {}); // the refusal is every response
    return { ready, fetch: async () => toErrorResponse(error), drain: () => {}, close: async () => {} };
  }
  return createWebAppOn(createWebRuntime, options);
}
