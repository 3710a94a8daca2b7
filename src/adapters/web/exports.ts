/**
 * What both web entries export besides createWebRuntime / createWebApp (which differ only in
 * the onnxruntime-web build they load).
 * @module
 */
export * from '../../index.js';
export { createDeferredRuntime, type DeferredRuntime } from '../../runtime/deferred-runtime.js';
export { bindingFetch, type FetchLike, type ModelBinding } from './binding-fetch.js';
export { WEB_DEVICES, type WebDevice } from './devices.js';
export { DEFAULT_MAX_MODEL_BYTES } from './model-files.js';
export type { WebRuntime, WebRuntimeOptions } from './runtime.js';
export type { LoadProgress, ProgressListener } from './load-progress.js';
export type { FileCacheOptions } from './file-cache.js';
export type { WebApp, WebAppOptions } from './web-app.js';
export type { Dtype } from '../../model/model-config.js';
