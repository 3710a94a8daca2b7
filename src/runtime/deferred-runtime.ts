/**
 * A runtime that is still loading: /health says "loading" and every call answers 503 until the
 * real runtime arrives, so a server can listen before a large model has loaded.
 * @module
 */
import { InferenceError } from '../errors.js';
import type { InferenceRuntime, RuntimeStatus } from './types.js';

export interface DeferredRuntime extends InferenceRuntime {
  /** Hands over the loaded runtime. */
  resolve(runtime: InferenceRuntime): void;
  /**
   * Shutdown has begun: status() says `draining` (so /health answers 503 and balancers stop
   * sending) while requests are still served, until close().
   */
  drain(): void;
}

/**
 * A runtime that answers 503 (and /health "loading") until `resolve(runtime)` hands over the real one.
 * createLoadingApp does this for you.
 * @example
 * const runtime = createDeferredRuntime();
 * const app = createApp({ runtime });                 // serve it now
 * runtime.resolve(await createWebRuntime({ model })); // ...and the model when it is loaded
 */
export function createDeferredRuntime(): DeferredRuntime {
  let target: InferenceRuntime | undefined;
  let closed = false;
  let draining = false;
  const ready = () => {
    if (closed) throw new InferenceError(503, 'The server is shutting down.');
    if (!target) throw new InferenceError(503, 'The model is still loading; retry shortly.', { headers: { 'retry-after': '5' } });
    return target;
  };
  return {
    specificationVersion: 'v1',
    resolve: (runtime) => void (target = runtime),
    drain: () => void (draining = true),
    status: (): RuntimeStatus => {
      if (closed) return 'closed';
      const status = target?.status() ?? 'loading';
      return draining && status === 'ready' ? 'draining' : status;
    },
    models: () => target?.models() ?? [],
    // async: a Promise-returning call rejects rather than throwing synchronously.
    tokenize: async (...args) => ready().tokenize(...args),
    generate: (request) => ready().generate(request),
    embed: async (request) => ready().embed(request),
    metrics: () => target?.metrics?.(),
    close: async () => {
      closed = true;
      await target?.close();
    },
  };
}
