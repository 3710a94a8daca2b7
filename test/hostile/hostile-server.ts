/**
 * The real Node stack on loopback for the hostile suite (createNodeRuntime + createApp + serve),
 * and a poller that measures how long `/health` went unanswered.
 */
import { Worker } from 'node:worker_threads';
import { createApp, type AppOptions } from '../../src/app/create-app.js';
import { createNodeRuntime, type NodeRuntime, type NodeRuntimeOptions } from '../../src/adapters/node/runtime.js';
import { serve, type RunningServer, type ServeOptions } from '../../src/adapters/node/serve.js';
import { requireBuild } from '../helpers/cli-server.js';

export interface HostileServer {
  url: string;
  runtime: NodeRuntime;
  server: RunningServer;
  /** Threads started while the runtime loaded: the inference thread. */
  threads: Worker[];
  errors: unknown[];
  close(): Promise<void>;
}

export async function startServer(
  model: string,
  options: Partial<NodeRuntimeOptions> = {},
  app: Partial<AppOptions> = {},
  serveOptions: ServeOptions = {},
): Promise<HostileServer> {
  requireBuild();
  const threads: Worker[] = [];
  const onWorker = (worker: Worker) => threads.push(worker);
  process.on('worker', onWorker);
  const errors: unknown[] = [];
  let runtime: NodeRuntime;
  try {
    runtime = await createNodeRuntime({ model, dtype: 'fp32', device: 'cpu', log: () => {}, ...options });
  } finally {
    process.off('worker', onWorker);
  }
  const server = await serve(createApp({ runtime, onError: (e) => errors.push(e), ...app }), { host: '127.0.0.1', port: 0, ...serveOptions });
  return {
    url: server.url,
    runtime,
    server,
    threads,
    errors,
    close: async () => {
      await server.close();
      await runtime.close();
    },
  };
}

/** Polls `GET /health` back to back until stopped; reports the longest wait for an answer. */
export function pollHealth(url: string) {
  let stopped = false;
  let longest = 0;
  let answers = 0;
  const statuses = new Set<number>();
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      const res = await fetch(`${url}/health`);
      await res.arrayBuffer();
      statuses.add(res.status);
      answers++;
      longest = Math.max(longest, performance.now() - started);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    get answers() {
      return answers;
    },
    async stop() {
      stopped = true;
      await loop;
      return { longestMs: longest, answers, statuses };
    },
  };
}

/** Reads a streamed response, recording the longest pause between chunks after the first. */
export async function readStream(response: Response): Promise<{ text: string; longestGapMs: number; chunks: number }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let last: number | undefined;
  let longest = 0;
  let chunks = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const now = performance.now();
    if (last !== undefined) longest = Math.max(longest, now - last);
    last = now;
    chunks++;
    text += decoder.decode(value, { stream: true });
  }
  return { text, longestGapMs: longest, chunks };
}

export const json = (body: unknown, init: RequestInit = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
  ...init,
});
