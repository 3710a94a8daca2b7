/**
 * The browser bundle (dist/browser/edgellm.js, no bundler) in headless Chromium: one createWebApp
 * call in a module Web Worker and on the page itself, model files and onnxruntime-web's wasm served
 * from the same origin. `device: 'auto'` must fall back to wasm where there is no GPU adapter. The
 * chat stream is read inside the browser, in pieces (chunk-by-chunk delivery over HTTP is what the
 * workerd suite checks).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.js';
import { requireBuild } from '../helpers/cli-server.js';
import { SHARED_MODELS, sharedModel, STORIES } from '../helpers/shared-models.js';

const DIST = fileURLToPath(new URL('../../dist/browser/', import.meta.url));
const GOLDEN = ', there was a little girl named Lily. She loved to play outside in the park.';
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html' };

// Runs in the browser (page or worker): one call to build the app, then a completion and a chat stream.
const SCRIPT = `
import { createWebApp } from '/dist/edgellm.js';
export async function run() {
  const app = createWebApp({ model: '${STORIES}', baseUrl: new URL('/models/', location.href), device: 'auto' });
  const runtime = await app.ready;
  const post = (path, body) => app.fetch(new Request('http://local' + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
  const completion = await (await post('/v1/completions', { prompt: 'Once upon a time', temperature: 0, max_tokens: 20 })).json();
  const stream = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Once upon a time' }], temperature: 0, max_tokens: 24, stream: true });
  const reader = stream.body.getReader();
  let reads = 0, text = '';
  for (;;) { const { done, value } = await reader.read(); if (done) break; reads++; text += new TextDecoder().decode(value); }
  return { device: runtime.loadInfo.device, text: completion.choices[0].text, reads, events: text.split('\\n\\n').filter(Boolean).length };
}`;

const PAGE = `<!doctype html><script type="module">
import { run } from '/script.js';
window.onPage = run();
window.inWorker = new Promise((resolve, reject) => {
  const worker = new Worker('/worker.js', { type: 'module' });
  worker.onmessage = (e) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data));
  worker.onerror = (e) => reject(new Error(e.message));
});
</script>`;
const WORKER = `import { run } from '/script.js'; run().then((r) => postMessage(r), (e) => postMessage({ error: String(e && e.stack || e) }));`;

function serveFiles(): Promise<Server> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    const inline: Record<string, [string, string]> = { '/': [PAGE, 'text/html'], '/script.js': [SCRIPT, 'text/javascript'], '/worker.js': [WORKER, 'text/javascript'] };
    if (inline[path]) return res.writeHead(200, { 'content-type': inline[path][1] }).end(inline[path][0]);
    const [root, rest] = path.startsWith('/dist/') ? [DIST, path.slice(6)] : path.startsWith('/models/') ? [SHARED_MODELS, path.slice(8)] : ['', ''];
    const file = root && join(root, normalize(rest));
    if (!file || !file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe.skipIf(!chromiumAvailable() || !sharedModel(STORIES))('the browser bundle in Chromium', () => {
  let server: Server;
  let browser: Browser;
  beforeAll(async () => {
    requireBuild();
    server = await serveFiles();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('serves stories260K from one createWebApp call, on the page and in a Web Worker, streaming', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    for (const where of ['onPage', 'inWorker']) {
      const result = await page.evaluate((key) => (window as unknown as Record<string, Promise<unknown>>)[key], where);
      expect(result, where).toMatchObject({ device: 'wasm' });
      const { text, reads, events } = result as { text: string; reads: number; events: number };
      expect(GOLDEN.startsWith(text), `${where}: ${text}`).toBe(true);
      expect(events).toBeGreaterThan(20);
      expect(reads, `${where}: ${events} events in ${reads} reads`).toBeGreaterThan(events / 4);
    }
    expect(errors).toEqual([]);
  });
});
