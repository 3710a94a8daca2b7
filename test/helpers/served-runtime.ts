/** A Node runtime behind the real HTTP server on loopback, with the official openai client pointed at it. */
import OpenAI from 'openai';
import { createNodeRuntime, type NodeRuntime, type NodeRuntimeOptions } from '../../src/adapters/node/runtime.js';
import { serve, type RunningServer } from '../../src/adapters/node/serve.js';
import { createApp } from '../../src/app/create-app.js';

export interface ServedRuntime {
  runtime: NodeRuntime;
  server: RunningServer;
  client: OpenAI;
  /** The base model's id. */
  name: string;
  /** Closes the server, then the runtime. */
  close(): Promise<void>;
}

export async function serveRuntime(options: NodeRuntimeOptions): Promise<ServedRuntime> {
  const runtime = await createNodeRuntime(options);
  const server = await serve(createApp({ runtime }), { host: '127.0.0.1', port: 0 });
  return {
    runtime,
    server,
    client: new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 }),
    name: runtime.loadInfo.modelNames[0],
    close: async () => {
      await server.close();
      await runtime.close();
    },
  };
}
