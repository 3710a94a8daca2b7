/**
 * `npm run dev:worker`: the Worker in workerd on a local port, like `wrangler dev`.
 * Usage: node dist-dev/workerd-dev.js [--port 8787] [--host 127.0.0.1] [--models DIR] [--var KEY=VALUE]... [--r2 BUCKET]
 * R2 buckets (wrangler.toml `[[r2_buckets]]`, or `--r2 BUCKET` bound as MODELS) are kept in
 * .wrangler/state/v3/r2 as wrangler dev keeps them, and open to scripts/r2-upload.mjs through
 * Miniflare's S3 endpoint with the keys in R2_ACCESS_KEY_ID / R2_SECRET_ACCESS_KEY (default: local-dev).
 * @module
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseWranglerToml, startWorkerDevServer } from './server.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8787' },
    host: { type: 'string', default: '127.0.0.1' },
    models: { type: 'string' },
    var: { type: 'string', multiple: true, default: [] },
    root: { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) },
    r2: { type: 'string' },
  },
});
const vars = Object.fromEntries(
  values.var.map((pair) => {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error(`--var takes KEY=VALUE, not ${pair}`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }),
);

const config = parseWranglerToml(readFileSync(join(values.root, 'wrangler.toml'), 'utf8'));
if (values.r2) config.r2Buckets = { ...config.r2Buckets, MODELS: values.r2 };
const s3Credentials = { accessKeyId: process.env.R2_ACCESS_KEY_ID ?? 'local-dev', secretAccessKey: process.env.R2_SECRET_ACCESS_KEY ?? 'local-dev' };
const r2 = { s3Credentials, persist: join(values.root, '.wrangler/state/v3/r2') };
const server = await startWorkerDevServer({ root: values.root, config, modelsDir: values.models, vars, host: values.host, port: Number(values.port), r2 });
console.error(`edgellm worker: workerd (Miniflare) at ${server.url}; loading the model...`);
for (const [binding, bucket] of Object.entries(config.r2Buckets ?? {})) {
  console.error(
    `edgellm worker: R2 bucket ${bucket} (binding ${binding}) in ${r2.persist}; upload with\n` +
      `  R2_ACCESS_KEY_ID=${s3Credentials.accessKeyId} R2_SECRET_ACCESS_KEY=... node scripts/r2-upload.mjs <model> --bucket ${bucket} --endpoint ${server.url}/cdn-cgi/local/r2/s3`,
  );
}
const started = Date.now();
const health = await fetch(`${server.url}/health`);
const body = await health.text();
console.error(
  health.ok
    ? `edgellm worker: ready in ${((Date.now() - started) / 1000).toFixed(1)} s at ${server.url}`
    : `edgellm worker: the model did not load (HTTP ${health.status}): ${body}`,
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void server.dispose().then(() => process.exit(0)));
