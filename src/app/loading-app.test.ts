import { describe, expect, it } from 'vitest';
import { MockRuntime } from '../testing/mock-runtime.js';
import { createLoadingApp } from './loading-app.js';

const get = (app: { fetch(r: Request): Promise<Response> }, path: string) => app.fetch(new Request(`http://x${path}`));

describe('createLoadingApp', () => {
  it('answers 503 with Retry-After while loading, then serves; the app options apply throughout', async () => {
    let resolve!: (runtime: MockRuntime) => void;
    const app = createLoadingApp(new Promise<MockRuntime>((r) => (resolve = r)), { apiKeys: ['k'] });
    const health = await get(app, '/health');
    expect(health.status).toBe(503);
    expect((await get(app, '/v1/models')).status).toBe(401);
    const loading = await app.fetch(
      new Request('http://x/v1/completions', { method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' }, body: '{"prompt":"hi"}' }),
    );
    expect(loading.status).toBe(503);
    expect(loading.headers.get('retry-after')).toBe('5');
    resolve(new MockRuntime({ model: 'm' }));
    await app.ready;
    expect((await get(app, '/health')).status).toBe(200);
  });

  it('closes a runtime that arrives after close()', async () => {
    let resolve!: (runtime: MockRuntime) => void;
    const app = createLoadingApp(new Promise<MockRuntime>((r) => (resolve = r)), {});
    await app.close();
    const runtime = new MockRuntime({ model: 'm' });
    resolve(runtime);
    await app.ready;
    await new Promise((r) => setTimeout(r, 0));
    expect(runtime.status()).toBe('closed');
    expect((await get(app, '/health')).status).toBe(503);
  });
});
