// Your itty-router app, with edgellm's endpoints mounted under /llm.
import { AutoRouter } from 'itty-router';
import { createApp } from 'edgellm';

/** @param {import('edgellm').InferenceRuntime} runtime */
export function buildRouter(runtime) {
  const llm = createApp({ runtime, basePath: '/llm' });
  const router = AutoRouter();
  router.get('/', () => ({ app: 'mine', model: '/llm/v1/models' }));
  router.all('/llm/*', (request) => llm.fetch(request));
  return router;
}
