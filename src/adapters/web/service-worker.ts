/**
 * The browser bundle's entry for module Service Workers (`dist/browser/edgellm.sw.js`). A Service
 * Worker may not call `import()` (the HTML spec forbids it there, and Chromium throws), so unlike
 * `index.ts` this entry imports both onnxruntime-web builds statically. Only their JavaScript is
 * loaded up front; the wasm binary is fetched for the device chosen (through the file cache: it is
 * beside this file). A Service Worker cannot start Workers either, so onnxruntime-web runs
 * single-threaded here (wasm-threads.ts sees no `Worker`).
 * @example
 * // sw.js, registered with navigator.serviceWorker.register('/sw.js', { type: 'module' })
 * import { createWebApp } from './edgellm/edgellm.sw.js';
 * const app = createWebApp({ model: 'karpathy__stories260K', baseUrl: new URL('/models/', location.href) });
 * self.addEventListener('fetch', (e) => { if (new URL(e.request.url).pathname.startsWith('/v1/')) e.respondWith(app.fetch(e.request)); });
 * @module
 */
import * as ortWasm from 'onnxruntime-web/wasm';
import * as ortWebGpu from 'onnxruntime-web/webgpu';
import { createWebRuntimeOn, type OrtLoader, type OrtWeb, type WebRuntime, type WebRuntimeOptions } from './runtime.js';
import { createWebAppOn, type WebApp, type WebAppOptions } from './web-app.js';

export * from './exports.js';

const loadOrt: OrtLoader = async (flavour) => (flavour === 'webgpu' ? ortWebGpu : ortWasm) as unknown as OrtWeb;

const platform = { wasmBase: new URL('./', import.meta.url) };

export function createWebRuntime(options: WebRuntimeOptions): Promise<WebRuntime> {
  return createWebRuntimeOn(loadOrt, options, platform);
}

export function createWebApp(options: WebAppOptions): WebApp {
  return createWebAppOn(createWebRuntime, options);
}
