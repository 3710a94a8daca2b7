/**
 * GET /health (200 when ready, 503 while loading or shutting down) and GET / (what this server is).
 * @module
 */
import type { Handler } from '../context.js';
import { jsonResponse } from '../shared/stream-response.js';

export const handleHealth: Handler = async (_request, ctx) => {
  const status = ctx.runtime.status();
  return jsonResponse({ status: status === 'ready' ? 'ok' : status }, status === 'ready' ? 200 : 503);
};

export const handleRoot: Handler = async (_request, ctx) =>
  jsonResponse({
    name: 'edgellm',
    status: ctx.runtime.status(),
    models: ctx.runtime.status() === 'ready' ? ctx.runtime.models().map((m) => m.id) : [],
    endpoints: [
      'GET /health',
      'GET /v1/models',
      'POST /v1/completions',
      'POST /v1/chat/completions',
      'POST /v1/embeddings',
      'POST /generate',
    ],
    docs: 'See the README for request examples.',
  });
