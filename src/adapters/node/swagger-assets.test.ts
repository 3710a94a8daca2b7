import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../app/create-app.js';
import { SWAGGER_UI_FILES } from '../../handlers/docs/swagger-page.js';
import { MockRuntime } from '../../testing/mock-runtime.js';
import { swaggerUiAssets, swaggerUiDistDir } from './swagger-assets.js';

describe('swaggerUiAssets', () => {
  const dir = swaggerUiDistDir();

  it('finds the installed swagger-ui-dist package', () => {
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name).toBe('swagger-ui-dist');
  });

  it('has every file the docs page loads', () => {
    for (const name of Object.keys(SWAGGER_UI_FILES)) expect(existsSync(join(dir, name)), name).toBe(true);
  });

  it('serves a listed file byte for byte with its content type', async () => {
    const res = await swaggerUiAssets(dir)('swagger-ui-bundle.js');
    expect(res?.status).toBe(200);
    expect(res?.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const bytes = new Uint8Array(await res!.arrayBuffer());
    expect(Buffer.from(bytes).equals(readFileSync(join(dir, 'swagger-ui-bundle.js')))).toBe(true);
    expect(res?.headers.get('content-length')).toBe(String(bytes.byteLength));
  });

  it('serves the same bytes again from its cache', async () => {
    const assets = swaggerUiAssets(dir);
    const first = await (await assets('favicon-16x16.png'))!.arrayBuffer();
    const second = await (await assets('favicon-16x16.png'))!.arrayBuffer();
    expect(new Uint8Array(second)).toEqual(new Uint8Array(first));
    expect(first.byteLength).toBeGreaterThan(0);
  });

  it('serves nothing else from the package directory', async () => {
    const assets = swaggerUiAssets(dir);
    for (const name of ['index.html', 'package.json', '../package.json', 'swagger-ui-bundle.js.map', 'constructor']) {
      expect(await assets(name), name).toBeUndefined();
    }
  });

  it('makes /docs work end to end through createApp', async () => {
    const app = createApp({ runtime: new MockRuntime(), docsAssets: swaggerUiAssets() });
    const page = await app.fetch(new Request('http://test/docs'));
    expect(page.status).toBe(200);
    const css = await app.fetch(new Request('http://test/docs/swagger-ui.css'));
    expect(css.status).toBe(200);
    expect(await css.text()).toBe(readFileSync(join(dir, 'swagger-ui.css'), 'utf8'));
  });
});
