// An existing node:http server that hands /llm/* to edgellm and keeps its other routes.
import { getRequestListener } from '@hono/node-server';
import { createApp } from 'edgellm';

/** @param {import('edgellm').InferenceRuntime} runtime */
export function buildListener(runtime) {
  const llm = createApp({ runtime, basePath: '/llm' });
  // Converts IncomingMessage/ServerResponse to Request/Response, streaming with backpressure and
  // aborting request.signal when the client disconnects.
  const toLlm = getRequestListener((request) => llm.fetch(request));
  /** @type {import('node:http').RequestListener} */
  return (req, res) => {
    if (req.url === '/llm' || req.url?.startsWith('/llm/')) {
      void toLlm(req, res);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('my app: the model answers under /llm/v1/...\n');
  };
}
