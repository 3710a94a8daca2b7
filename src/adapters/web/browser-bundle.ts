/**
 * The browser bundle's entry for pages and Web Workers (`dist/browser/edgellm.js`): `index.ts` with
 * onnxruntime-web bundled in, whose wasm files are beside this file, so the runtime can read them
 * through its file cache. (`index.ts` itself, in a user's bundle, cannot know where those files end up.)
 * @module
 */
import { createWebRuntimeOn, type OrtLoader, type OrtWeb, type WebRuntime, type WebRuntimeOptions } from './runtime.js';
import { createWebAppOn, type WebApp, type WebAppOptions } from './web-app.js';

export * from './exports.js';

const loadOrt: OrtLoader = async (flavour) =>
  (flavour === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm')) as unknown as OrtWeb;

const platform = { wasmBase: new URL('./', import.meta.url) };

export function createWebRuntime(options: WebRuntimeOptions): Promise<WebRuntime> {
  return createWebRuntimeOn(loadOrt, options, platform);
}

export function createWebApp(options: WebAppOptions): WebApp {
  return createWebAppOn(createWebRuntime, options);
}
