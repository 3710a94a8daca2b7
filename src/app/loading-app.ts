/**
 * createLoadingApp: the app first, the model later. The app answers at once (`/health` says
 * loading, the rest 503 with Retry-After) and serves when the runtime is ready; if loading fails,
 * every request gets 503 with the reason, so a misconfigured deployment says what is wrong.
 * `edgellm serve` and the web adapter (Worker, Service Worker, browser) both start this way.
 * @module
 */
import { InferenceError, isInferenceError, toErrorResponse } from '../errors.js';
import { createDeferredRuntime } from '../runtime/deferred-runtime.js';
import type { InferenceRuntime } from '../runtime/types.js';
import { createApp, type App, type AppOptions } from './create-app.js';

export interface LoadingApp<R extends InferenceRuntime = InferenceRuntime> extends App {
  /** Resolves when the model is loaded; rejects with the load error (an InferenceError, 503). */
  readonly ready: Promise<R>;
  /** Shutting down but still serving: `/health` answers 503 `draining` so balancers stop sending. */
  drain(): void;
  /** Stops the runtime: now if it is loaded, else as soon as it is. */
  close(): Promise<void>;
}

/** Any load failure as the 503 every request will get. */
export function loadError(error: unknown): InferenceError {
  if (isInferenceError(error)) return error;
  return new InferenceError(503, `The model could not be loaded: ${(error as Error)?.message ?? String(error)}`, { code: 'model_load_failed' });
}

/**
 * @example
 * const app = createLoadingApp(createNodeRuntime({ model: './models/stories' }), { apiKeys: ['k'] });
 * await serve(app, { port: 8080 });   // listening while the model loads
 * await app.ready;                    // rejects with the load error
 */
export function createLoadingApp<R extends InferenceRuntime>(load: Promise<R>, options: Omit<AppOptions, 'runtime'>): LoadingApp<R> {
  const deferred = createDeferredRuntime();
  let failure: InferenceError | undefined;
  let closed = false;
  const ready = load.then(
    (runtime) => {
      deferred.resolve(runtime);
      if (closed) void runtime.close();
      return runtime;
    },
    (error) => {
      failure = loadError(error);
      throw failure;
    },
  );
  ready.catch(() => {}); // the failure is reported through every response
  const app = createApp({ ...options, runtime: deferred });
  return {
    ready,
    fetch: (request, ...rest) => (failure ? Promise.resolve(toErrorResponse(failure)) : app.fetch(request, ...rest)),
    drain: () => deferred.drain(),
    close: async () => {
      closed = true;
      await deferred.close();
    },
  };
}
