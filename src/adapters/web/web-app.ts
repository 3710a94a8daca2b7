/**
 * createWebAppOn: the app and its model in one call, for hosts without a start-up phase (a
 * Worker, a Service Worker, a Web Worker): createLoadingApp on a web runtime.
 * @module
 */
import type { AppOptions } from '../../app/create-app.js';
import { createLoadingApp, type LoadingApp } from '../../app/loading-app.js';
import type { WebRuntime, WebRuntimeOptions } from './runtime.js';

export interface WebAppOptions extends WebRuntimeOptions, Omit<AppOptions, 'runtime'> {}

export type WebApp = LoadingApp<WebRuntime>;

export function createWebAppOn(createRuntime: (options: WebRuntimeOptions) => Promise<WebRuntime>, options: WebAppOptions): WebApp {
  // The runtime options are ignored by createApp; every app option (keys, CORS, basePath, logs, docs) applies.
  return createLoadingApp(createRuntime(options), options);
}
