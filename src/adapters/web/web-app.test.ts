import { describe, expect, it } from 'vitest';
import { InferenceError } from '../../errors.js';
import { MockRuntime } from '../../testing/mock-runtime.js';
import type { WebRuntime } from './runtime.js';
import { createWebAppOn } from './web-app.js';

const get = (app: { fetch(r: Request): Promise<Response> }, path: string) => app.fetch(new Request(`http://x${path}`));

describe('createWebAppOn', () => {
  it('answers 503 while loading, then serves the loaded runtime', async () => {
    let resolve!: (runtime: WebRuntime) => void;
    const app = createWebAppOn(() => new Promise((r) => (resolve = r)), { model: 'm', basePath: '/llm' });
    const loading = await get(app, '/llm/health');
    expect(loading.status).toBe(503);
    resolve(new MockRuntime({ model: 'm' }) as unknown as WebRuntime);
    await app.ready;
    expect((await get(app, '/llm/health')).status).toBe(200);
    const models = await (await get(app, '/llm/v1/models')).json();
    expect(models.data.map((m: { id: string }) => m.id)).toContain('m');
  });

  it('answers every request with the load failure: an InferenceError as is, anything else as a 503 naming it', async () => {
    const tooLarge = new InferenceError(503, 'model.onnx is 200 MB, more than the memory budget', { code: 'model_too_large' });
    for (const [failure, message, code] of [
      [tooLarge, tooLarge.message, 'model_too_large'],
      [new TypeError('fetch failed'), 'The model could not be loaded: fetch failed', 'model_load_failed'],
    ] as const) {
      const app = createWebAppOn(() => Promise.reject(failure), { model: 'm' });
      await expect(app.ready).rejects.toMatchObject({ status: 503, code });
      for (const path of ['/health', '/v1/models', '/nope']) {
        const response = await get(app, path);
        expect(response.status).toBe(503);
        expect((await response.json()).error).toEqual({ message, type: 'service_unavailable', param: null, code });
      }
    }
  });
});
