/**
 * edgellm for browsers (a page, a Web Worker, a Service Worker) and bundlers: the platform-neutral
 * API plus a runtime on onnxruntime-web, WebGPU when there is an adapter, wasm otherwise.
 * Workers get `workerd.ts` instead (the `workerd` export condition): wasm only, no WebGPU code.
 * @example
 * // in a Service Worker: the OpenAI API under /llm, the model files under /models/
 * import { createWebApp } from 'edgellm/web';
 * const app = createWebApp({ model: 'karpathy__stories260K', baseUrl: new URL('/models/', location.href), basePath: '/llm' });
 * self.addEventListener('fetch', (e) => { if (new URL(e.request.url).pathname.startsWith('/llm/')) e.respondWith(app.fetch(e.request)); });
 * @module
 */
import { createWebRuntimeOn, type OrtLoader, type OrtWeb, type WebRuntime, type WebRuntimeOptions } from './runtime.js';
import { createWebAppOn, type WebApp, type WebAppOptions } from './web-app.js';

export * from './exports.js';

// Loaded on demand, so a page only downloads the build its device needs.
const loadOrt: OrtLoader = async (flavour) =>
  (flavour === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm')) as unknown as OrtWeb;

/**
 * A model reachable by fetch (a base URL, your fetch, or a Workers binding) on onnxruntime-web
 * (WebGPU or wasm), in this thread. Needs the optional peer `onnxruntime-web` in your bundle.
 * @example
 * import { createApp, createWebRuntime } from 'edgellm/web';
 * const runtime = await createWebRuntime({ model: 'karpathy__stories260K', baseUrl: new URL('/models/', location.href) });
 * const app = createApp({ runtime });
 */
export function createWebRuntime(options: WebRuntimeOptions): Promise<WebRuntime> {
  return createWebRuntimeOn(loadOrt, options);
}

/**
 * The app and its model in one call: answers 503 while the model loads, then serves; a load failure
 * becomes every request's 503 with the reason. For Service Workers, Web Workers and pages.
 * @example
 * import { createWebApp } from 'edgellm/web';
 * const app = createWebApp({ model: 'karpathy__stories260K', baseUrl: new URL('/models/', location.href) });
 * self.addEventListener('fetch', (event) => event.respondWith(app.fetch(event.request)));
 * await app.ready;   // optional: the runtime, or the load error
 */
export function createWebApp(options: WebAppOptions): WebApp {
  return createWebAppOn(createWebRuntime, options);
}
