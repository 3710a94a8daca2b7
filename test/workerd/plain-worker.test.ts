/**
 * `edgellm/web` (its workerd build) used directly in a plain Worker, bundled as wrangler would: it
 * refuses clearly (503 `unsupported_host`, saying to use a Durable Object) instead of serving until
 * concurrent streams hang.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/cli-server.js';
import { bundleWorker } from '../helpers/workerd.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const WORKER = `
import wasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';
import { createWebApp } from 'edgellm/web';
let app;
export default {
  fetch(request) {
    app ??= createWebApp({ model: 'https://models.example/stories', wasm: { module: wasm } });
    return app.fetch(request);
  },
};
`;

describe('edgellm/web in a plain Worker', () => {
  let mf: Miniflare;
  let url: string;
  let out: string;

  beforeAll(async () => {
    requireBuild();
    out = mkdtempSync(join(tmpdir(), 'edgellm-plain-worker-'));
    writeFileSync(join(out, 'src.js'), WORKER);
    const modules = await bundleWorker(join(out, 'src.js'), out, {
      conditions: ['workerd', 'worker', 'browser'],
      alias: { 'edgellm/web': join(ROOT, 'dist/web.workerd.js') },
      nodePaths: [join(ROOT, 'node_modules')],
    });
    mf = new Miniflare({
      modules,
      modulesRoot: out,
      compatibilityDate: '2025-09-01',
      host: '127.0.0.1',
      port: 0,
    });
    url = (await mf.ready).href.replace(/\/$/, '');
  });

  afterAll(async () => {
    await mf?.dispose();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('answers every request 503 unsupported_host, pointing to the Durable Object', async () => {
    for (const path of ['/health', '/v1/models']) {
      const response = await fetch(`${url}${path}`);
      expect(response.status, path).toBe(503);
      const { error } = await response.json();
      expect(error).toMatchObject({ type: 'service_unavailable', code: 'unsupported_host' });
      expect(error.message).toMatch(/cannot serve from a plain Worker.*Durable Object.*edgellm\/worker.*durableObject: true/);
    }
  });
});
