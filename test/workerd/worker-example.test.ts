/**
 * examples/worker, built as wrangler builds it (esbuild, `edgellm/worker` resolved to the built
 * dist/worker.js, the wasm as a CompiledWasm module) and run in workerd with its own wrangler.toml:
 * the Worker's own routes answer, and edgellm answers under /llm from its Durable Object.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetsFolder, parseWranglerToml } from '../../tools/workerd-dev/server.js';
import { requireBuild } from '../helpers/cli-server.js';
import { bundleWorker } from '../helpers/workerd.js';
import { SHARED_MODELS, sharedModel, STORIES } from '../helpers/shared-models.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = join(ROOT, 'examples/worker');

describe.skipIf(!sharedModel(STORIES))('examples/worker in workerd', () => {
  let mf: Miniflare;
  let url: string;
  let out: string;

  beforeAll(async () => {
    requireBuild();
    out = mkdtempSync(join(tmpdir(), 'edgellm-worker-example-'));
    const modules = await bundleWorker(join(EXAMPLE, 'src/index.js'), out, { alias: { 'edgellm/worker': join(ROOT, 'dist/worker.js') } });
    const config = parseWranglerToml(readFileSync(join(EXAMPLE, 'wrangler.toml'), 'utf8'));
    mf = new Miniflare({
      modules,
      modulesRoot: out,
      compatibilityDate: config.compatibilityDate,
      compatibilityFlags: config.compatibilityFlags,
      bindings: config.vars,
      durableObjects: config.durableObjects,
      assets: {
        directory: assetsFolder(SHARED_MODELS, () => {}),
        binding: config.assets?.binding,
        routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: config.assets?.runWorkerFirst ?? true },
      },
      host: '127.0.0.1',
      port: 0,
    });
    url = (await mf.ready).href.replace(/\/$/, '');
  });

  afterAll(async () => {
    await mf?.dispose();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it("keeps the Worker's own routes", async () => {
    expect(await (await fetch(`${url}/`)).text()).toMatch(/^my worker/);
    expect((await fetch(`${url}/elsewhere`)).status).toBe(404);
  });

  it('answers the API under /llm, streamed, from the Durable Object', async () => {
    const models = await (await fetch(`${url}/llm/v1/models`)).json();
    expect(models.data.map((m: { id: string }) => m.id)).toEqual([STORIES]);
    const response = await fetch(`${url}/llm/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 10, temperature: 0, stream: true }),
    });
    const events = (await response.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)).choices[0]?.text ?? '').join('');
    expect(text).toBe(', there was a little girl named Lily'); // 10 greedy tokens, as on the Node server
    const missing = await fetch(`${url}/llm/v1/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe('unknown_route');
  });
});
