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
import { createWebAppOn, type WebApp, type WebAppOptions } from './web-app.js';

export * from './exports.js';

const loadOrt: OrtLoader = async () => ort as unknown as OrtWeb;

export function createWebRuntime(options: WebRuntimeOptions): Promise<WebRuntime> {
  // A Worker isolate has 128 MB for everything: the model's estimate must fit in it by default.
  return createWebRuntimeOn(loadOrt, { ...options, maxModelBytes: options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES });
}

export function createWebApp(options: WebAppOptions): WebApp {
  return createWebAppOn(createWebRuntime, options);
}
