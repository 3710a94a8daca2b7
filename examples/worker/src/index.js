// A Worker of your own: your routes, and edgellm's API under /llm, served by its Durable Object
// (one per model: it keeps the model, the batch, the KV cache and the /generate sessions).
import edgellm, { EdgellmModel } from 'edgellm/worker';

export { EdgellmModel };

export default {
  /** @param {Request} request @param {Record<string, unknown>} env */
  fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/llm' || pathname.startsWith('/llm/')) return edgellm.fetch(request, env);
    if (pathname === '/') return new Response('my worker: the model answers under /llm/v1/...\n');
    return new Response('not found\n', { status: 404 });
  },
};
