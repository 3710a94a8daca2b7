/**
 * createWebAppOn: the app and its model in one call, for hosts without a start-up phase (a
 * Worker, a Service Worker, a Web Worker). The app answers at once (/health says loading, the
 * rest 503) and serves when the model is ready; if loading fails, every request gets 503 with
 * the reason, so a misconfigured deployment says what is wrong.
 * @module
 */
import { createApp, type App, type AppOptions } from '../../app/create-app.js';
import { InferenceError, isInferenceError, toErrorResponse } from '../../errors.js';
import { createDeferredRuntime } from '../../runtime/deferred-runtime.js';
import type { WebRuntime, WebRuntimeOptions } from './runtime.js';

export interface WebAppOptions extends WebRuntimeOptions, Omit<AppOptions, 'runtime'> {}

export interface WebApp extends App {
  /** Resolves when the model is loaded; rejects with the load error (an InferenceError, 503). */
  readonly ready: Promise<WebRuntime>;
}

/** Any load failure as the 503 every request will get. */
export function loadError(error: unknown): InferenceError {
  if (isInferenceError(error)) return error;
  return new InferenceError(503, `The model could not be loaded: ${(error as Error)?.message ?? String(error)}`, { code: 'model_load_failed' });
}

export function createWebAppOn(createRuntime: (options: WebRuntimeOptions) => Promise<WebRuntime>, options: WebAppOptions): WebApp {
  const deferred = createDeferredRuntime();
  let failure: InferenceError | undefined;
  const ready = createRuntime(options).then(
    (runtime) => (deferred.resolve(runtime), runtime),
    (error) => {
      failure = loadError(error);
      throw failure;
    },
  );
  ready.catch(() => {}); // the failure is reported through every response
  // The runtime options are ignored by createApp; every app option (keys, CORS, basePath, logs, docs) applies.
  const app = createApp({ ...options, runtime: deferred });
  return {
    ready,
    fetch: (request, ...rest) => (failure ? Promise.resolve(toErrorResponse(failure)) : app.fetch(request, ...rest)),
  };
}
