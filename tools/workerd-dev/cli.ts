/**
 * `npm run dev:worker`: the Worker in workerd on a local port, like `wrangler dev`.
 * Usage: node dist-dev/workerd-dev.js [--port 8787] [--host 127.0.0.1] [--models DIR] [--var KEY=VALUE]...
 * @module
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startWorkerDevServer } from './server.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8787' },
    host: { type: 'string', default: '127.0.0.1' },
    models: { type: 'string' },
    var: { type: 'string', multiple: true, default: [] },
    root: { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) },
  },
});
const vars = Object.fromEntries(
  values.var.map((pair) => {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error(`--var takes KEY=VALUE, not ${pair}`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }),
);

const server = await startWorkerDevServer({ root: values.root, modelsDir: values.models, vars, host: values.host, port: Number(values.port) });
console.error(`edgellm worker: workerd (Miniflare) at ${server.url}; loading the model...`);
const started = Date.now();
const health = await fetch(`${server.url}/health`);
const body = await health.text();
console.error(
  health.ok
    ? `edgellm worker: ready in ${((Date.now() - started) / 1000).toFixed(1)} s at ${server.url}`
    : `edgellm worker: the model did not load (HTTP ${health.status}): ${body}`,
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void server.dispose().then(() => process.exit(0)));
