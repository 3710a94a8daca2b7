// Your Hono app, with edgellm's endpoints mounted under /llm.
import { Hono } from 'hono';
import { createApp } from 'edgellm';

/** @param {import('edgellm').InferenceRuntime} runtime */
export function buildApp(runtime) {
  const llm = createApp({ runtime, basePath: '/llm' });
  const app = new Hono();
  app.get('/', (c) => c.text('my app: the model answers under /llm/v1/...'));
  // c.req.raw is the standard Request, signal included, so a client that leaves frees its sequence.
  app.all('/llm/*', (c) => llm.fetch(c.req.raw));
  return app;
}
