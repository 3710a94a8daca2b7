/**
 * GET /health (200 when ready, 503 while loading, draining or shutting down) and GET / (what this server is,
 * or for a browser a redirect to the docs).
 * @module
 */
import type { Handler } from '../context.js';
import { prefersHtml } from '../docs/prefers-html.js';
import { jsonResponse } from '../shared/stream-response.js';

export const handleHealth: Handler = async (_request, ctx) => {
  const status = ctx.runtime.status();
  return jsonResponse({ status: status === 'ready' ? 'ok' : status }, status === 'ready' ? 200 : 503);
};

export const handleRoot: Handler = async (request, ctx) => {
  const base = ctx.basePath ?? '';
  // lmdeploy serves its Swagger UI at /: a browser goes there, curl and API clients get JSON.
  if (prefersHtml(request.headers.get('accept'))) return new Response(null, { status: 302, headers: { location: `${base}/docs` } });
  return jsonResponse({
    name: 'edgellm',
    status: ctx.runtime.status(),
    models: ['ready', 'draining'].includes(ctx.runtime.status()) ? ctx.runtime.models().map((m) => m.id) : [],
    endpoints: [
      'GET /health',
      'GET /metrics',
      'GET /v1/models',
      'POST /v1/completions',
      'POST /v1/chat/completions',
      'POST /v1/embeddings',
      'POST /generate',
      'POST /v1/chat/interactive',
      'POST /v1/encode',
      'GET /openapi.json',
      'GET /docs',
      'GET /ui',
    ],
    docs: `${base}/docs`,
    ui: `${base}/ui`,
    openapi: `${base}/openapi.json`,
  });
};
