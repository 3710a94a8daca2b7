/**
 * How many threads onnxruntime-web's wasm gets. Threads are Web Workers sharing the wasm memory, so
 * they need a SharedArrayBuffer (only in a cross-origin isolated page: COOP `same-origin` and COEP
 * `require-corp` or `credentialless`) and a host that can start Workers (a page or a dedicated
 * Worker; not a Service Worker, not workerd). Without them, one thread, and the reason.
 * @module
 */

export interface ThreadHost {
  crossOriginIsolated?: boolean;
  sharedArrayBuffer: boolean;
  workers: boolean;
  hardwareConcurrency?: number;
}

export function threadHost(g: Record<string, unknown> = globalThis as unknown as Record<string, unknown>): ThreadHost {
  const nav = g.navigator as { hardwareConcurrency?: number } | undefined;
  return {
    crossOriginIsolated: g.crossOriginIsolated as boolean | undefined,
    sharedArrayBuffer: typeof g.SharedArrayBuffer === 'function',
    workers: typeof g.Worker === 'function',
    hardwareConcurrency: nav?.hardwareConcurrency,
  };
}

/** The default where threads work: onnxruntime-web's own (half the cores, at most 4), so the page keeps a core. */
export const defaultThreads = (cores: number | undefined) => Math.min(4, Math.ceil((cores || 1) / 2));

export function chooseWasmThreads(requested: number | undefined, host: ThreadHost): { threads: number; message: string } {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) {
    throw new Error(`wasm.threads must be a whole number of at least 1, not ${requested}`);
  }
  const why = !host.workers
    ? 'this host cannot start Workers (a Service Worker or workerd)'
    : host.crossOriginIsolated === false || !host.sharedArrayBuffer
      ? 'the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)'
      : undefined;
  if (requested === 1) return { threads: 1, message: 'wasm on 1 thread (wasm.threads: 1)' };
  if (why) {
    const asked = requested ? ` instead of the ${requested} asked for` : '';
    return { threads: 1, message: `wasm on 1 thread${asked}: ${why}` };
  }
  if (requested) return { threads: requested, message: `wasm on ${requested} threads (wasm.threads)` };
  const threads = defaultThreads(host.hardwareConcurrency);
  return {
    threads,
    message: `wasm on ${threads} thread${threads > 1 ? 's' : ''}: cross-origin isolated, ${host.hardwareConcurrency ?? 'an unknown number of'} cores (half, at most 4)`,
  };
}
