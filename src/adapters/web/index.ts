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

export function createWebRuntime(options: WebRuntimeOptions): Promise<WebRuntime> {
  return createWebRuntimeOn(loadOrt, options);
}

export function createWebApp(options: WebAppOptions): WebApp {
  return createWebAppOn(createWebRuntime, options);
}
