import { describe, expect, it } from 'vitest';
import { createApp, type AppOptions } from '../../app/create-app.js';
import { MockRuntime } from '../../testing/mock-runtime.js';
import { etagMatches } from './handler.js';
import { uiPage } from './page.js';

const app = (options: Partial<AppOptions> = {}) => createApp({ runtime: new MockRuntime(), ...options });
const get = (options: Partial<AppOptions>, path: string, headers: Record<string, string> = {}) =>
  app(options).fetch(new Request(`http://test${path}`, { headers }));

async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...digest));
}

describe('GET /ui', () => {
  it('serves the page with a CSP that allows only its own inline script and style', async () => {
    const res = await get({}, '/ui');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1];
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1];
    const csp = res.headers.get('content-security-policy')!;
    expect(csp.split('; ')).toEqual([
      "default-src 'none'",
      `script-src 'sha256-${await sha256(script)}'`,
      `style-src 'sha256-${await sha256(style)}'`,
      "connect-src 'self'",
      'img-src data:',
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ]);
  });

  it('references nothing outside itself, with relative API URLs', () => {
    const { html, script, style } = uiPage();
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html.match(/<style/g)).toHaveLength(1);
    const markup = html.replace(script, '');
    expect([...markup.matchAll(/\s(?:src|href)=("[^"]*"|\S+)/g)].map((m) => m[1])).toEqual(['"data:,"']);
    expect(style).not.toMatch(/url\(|@import/);
    expect(script).not.toMatch(/<\/script|<!--/i);
    expect(script).toMatch(/fetch\("v1\/models"|fetch\('v1\/models'/);
    expect(script).toMatch(/fetch\("v1\/chat\/completions"|fetch\('v1\/chat\/completions'/);
    expect(script).not.toMatch(/["'`]\/v1\//);
    expect(html.length).toBeLessThan(48_000);
  });

  it('is a script the browser can parse (the embedded functions survived the build)', () => {
    expect(() => new Function(uiPage().script)).not.toThrow();
  });

  it('labels every control', () => {
    const { html } = uiPage();
    for (const id of ['model', 'max_tokens', 'temperature', 'top_p', 'top_k', 'num_beams', 'repetition_penalty', 'api-key', 'input']) {
      const labelled = new RegExp(`<label for="${id}"|<label[^>]*>[^<]*<input id="${id}"`).test(html);
      expect(labelled, id).toBe(true);
    }
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await get({}, '/ui');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const again = await get({}, '/ui', { 'if-none-match': `W/"other", ${etag}` });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    expect(again.headers.get('etag')).toBe(etag);
    expect((await get({}, '/ui', { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('is public when API keys are set; the API behind it is not', async () => {
    const options = { apiKeys: ['sekret'] };
    expect((await get(options, '/ui')).status).toBe(200);
    expect((await get(options, '/v1/models')).status).toBe(401);
    expect((await get(options, '/v1/models', { authorization: 'Bearer sekret' })).status).toBe(200);
  });

  it('lives under the basePath, and only GET', async () => {
    expect((await get({ basePath: '/llm' }, '/llm/ui')).status).toBe(200);
    expect((await get({ basePath: '/llm' }, '/ui')).status).toBe(404);
    const post = await app().fetch(new Request('http://test/ui', { method: 'POST', body: '{}' }));
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('etagMatches', () => {
  it('reads lists, weak tags and *', () => {
    expect(etagMatches(null, '"a"')).toBe(false);
    expect(etagMatches('"a"', '"a"')).toBe(true);
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b" , "a"', '"a"')).toBe(true);
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('"ab"', '"a"')).toBe(false);
  });
});
