import { describe, expect, it } from 'vitest';
import { createApp, type AppOptions } from '../../app/create-app.js';
import type { AssetSource } from '../context.js';
import { MockRuntime } from '../../testing/mock-runtime.js';
import { DOCS_CSP } from './swagger-page.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** An asset source that records what it was asked for. */
function fakeAssets() {
  const asked: string[] = [];
  const source: AssetSource = (name) => {
    asked.push(name);
    return name === 'missing.js' ? undefined : new Response(`contents of ${name}`, { headers: { 'x-from': 'source' } });
  };
  return { asked, source };
}

function appWith(options: Partial<AppOptions> = {}) {
  return createApp({ runtime: new MockRuntime(), ...options });
}

const get = (app: ReturnType<typeof createApp>, path: string, headers: Record<string, string> = {}) =>
  app.fetch(new Request(`http://test${path}`, { headers }));

describe('GET /docs', () => {
  it('serves the Swagger UI page, loading only files of this server', async () => {
    const res = await get(appWith({ docsAssets: fakeAssets().source }), '/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(DOCS_CSP);
    const page = await res.text();
    expect(page).toContain('<script src="/docs/swagger-ui-bundle.js"></script>');
    expect(page).toContain('<script src="/docs/swagger-initializer.js"></script>');
    expect(page).toContain('<link rel="stylesheet" href="/docs/swagger-ui.css">');
    // No CDN, no inline script: every URL is a path on this server.
    expect(page).not.toMatch(/https?:|\/\/[a-z]/i);
    expect(page).not.toMatch(/<script>/);
  });

  it('generates the initializer: the document at the mount point, no external validator', async () => {
    const res = await get(appWith({ docsAssets: fakeAssets().source, basePath: '/llm' }), '/llm/docs/swagger-initializer.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const script = await res.text();
    expect(script).toContain('"url":"/llm/openapi.json"');
    expect(script).toContain('"validatorUrl":null');
    expect(script).toContain('SwaggerUIBundle.presets.apis');
  });

  it('links its files under the base path', async () => {
    const page = await (await get(appWith({ docsAssets: fakeAssets().source, basePath: '/llm' }), '/llm/docs')).text();
    expect(page).toContain('src="/llm/docs/swagger-ui-bundle.js"');
    expect(page).toContain('href="/llm/docs/swagger-ui.css"');
  });

  it('says how to enable it when the host gave no asset source', async () => {
    const app = appWith();
    const res = await get(app, '/docs');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const page = await res.text();
    expect(page).toContain('swaggerUiAssets()');
    expect(page).toContain('docsAssets');
    expect(page).toContain('swagger-ui-bundle.js');
    expect(page).toContain('href="/openapi.json"');
    expect(page).not.toMatch(/https?:/);
    const file = await get(app, '/docs/swagger-ui.css');
    expect(file.status).toBe(404);
    expect((await file.json()).error.message).toMatch(/no source for Swagger UI files/);
    expect((await get(app, '/docs/swagger-initializer.js')).status).toBe(404);
  });
});

describe('GET /docs/{file}', () => {
  it('passes the listed files through from the asset source, with a content type and caching', async () => {
    const { asked, source } = fakeAssets();
    const res = await get(appWith({ docsAssets: source }), '/docs/swagger-ui.css');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('contents of swagger-ui.css');
    expect(res.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=86400');
    expect(res.headers.get('x-from')).toBe('source');
    expect(asked).toEqual(['swagger-ui.css']);
  });

  it('asks the source for nothing but the listed files', async () => {
    const { asked, source } = fakeAssets();
    const app = appWith({ docsAssets: source });
    for (const path of ['/docs/index.html', '/docs/..%2Fpackage.json', '/docs/swagger-ui-bundle.js.map', '/docs/toString', '/docs/missing.js']) {
      const res = await get(app, path);
      expect(res.status, path).toBe(404);
      expect((await res.json()).error.type).toBe('not_found_error');
    }
    expect(asked).toEqual([]);
  });

  it('is 404 when the source has no such file', async () => {
    const app = appWith({ docsAssets: () => undefined });
    expect((await get(app, '/docs/swagger-ui-bundle.js')).status).toBe(404);
  });

  it('answers 405 to other methods', async () => {
    const app = appWith({ docsAssets: fakeAssets().source });
    for (const path of ['/docs', '/docs/swagger-ui.css', '/openapi.json']) {
      const res = await app.fetch(new Request(`http://test${path}`, { method: 'POST', body: '{}' }));
      expect(res.status, path).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
    }
    expect((await app.fetch(new Request('http://test/openapiXjson', { method: 'POST' }))).status).toBe(404);
  });
});

describe('with API keys', () => {
  it('keeps the docs, their files and the document public, and the API keyed', async () => {
    const app = appWith({ apiKeys: ['sk-1'], docsAssets: fakeAssets().source });
    for (const path of ['/docs', '/docs/swagger-ui-bundle.js', '/docs/swagger-initializer.js', '/openapi.json']) {
      expect((await get(app, path)).status, path).toBe(200);
    }
    expect((await get(app, '/v1/models')).status).toBe(401);
    expect((await get(app, '/v1/models', { authorization: 'Bearer sk-1' })).status).toBe(200);
  });

  it('keeps them public under a base path too', async () => {
    const app = appWith({ apiKeys: ['sk-1'], basePath: '/llm', docsAssets: fakeAssets().source });
    expect((await get(app, '/llm/docs')).status).toBe(200);
    expect((await get(app, '/llm/openapi.json')).status).toBe(200);
    expect((await get(app, '/llm/docs/swagger-ui.css')).status).toBe(200);
  });
});

describe('GET / (lmdeploy serves its Swagger UI at the root)', () => {
  it('redirects a browser to the docs', async () => {
    const res = await get(appWith(), '/', { accept: BROWSER_ACCEPT });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/docs');
    const mounted = await get(appWith({ basePath: '/llm' }), '/llm/', { accept: BROWSER_ACCEPT });
    expect(mounted.headers.get('location')).toBe('/llm/docs');
  });

  it('keeps answering JSON to curl and API clients, with the docs locations', async () => {
    for (const headers of [{}, { accept: '*/*' }, { accept: 'application/json' }] as Record<string, string>[]) {
      const res = await get(appWith({ basePath: '/llm' }), '/llm', headers);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      const body = await res.json();
      expect(body.name).toBe('edgellm');
      expect(body.docs).toBe('/llm/docs');
      expect(body.openapi).toBe('/llm/openapi.json');
      expect(body.endpoints).toContain('GET /openapi.json');
    }
  });
});
