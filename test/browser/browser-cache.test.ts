/**
 * The browser's file cache, end to end in headless Chromium: examples/browser loads a model in its
 * Service Worker (progress events reach the page and its status line), the Service Worker is stopped
 * (CDP ServiceWorker.stopAllWorkers, as the browser does to an idle one), the page is reloaded, and
 * the example's static server, which counts every request by method, sees no GET of a model file or
 * of onnxruntime's wasm: only one HEAD per file (the cache checks the ETag). The chat still answers,
 * the same greedy tokens as before. Once for an ONNX folder (stories260K) and once for a tiny GGUF
 * written by the test (converted in the tab). Then the page running the app itself (`?in=page`)
 * with the origin private file system as the store, and with the cache off; and Chromium with a
 * SwiftShader WebGPU adapter, which `auto` must skip for wasm.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../examples/browser/serve.mjs';
import type { LoadProgress } from '../../src/adapters/web/load-progress.js';
import { CHROMIUM_PATH, chromiumAvailable, launchChromium, openOffline } from '../helpers/chromium.js';
import { tinyGguf } from '../helpers/gguf-reference.js';
import { SHARED_MODELS, sharedModel, STORIES } from '../helpers/shared-models.js';

const DIST_BROWSER = fileURLToPath(new URL('../../dist/browser/', import.meta.url));
const WASM = '/edgellm/ort-wasm-simd-threaded.wasm';
const hasChromium = chromiumAvailable();

interface Served {
  path: string;
  method: string;
}

/** The example server on `models`, recording every request. */
async function server(models: string) {
  const served: Served[] = [];
  const running = await startServer({
    port: 0,
    models,
    dist: DIST_BROWSER,
    onRequest: (path: string, method: string) => served.push({ path, method }),
  });
  return { ...running, served };
}

/** Loads the page (or reloads it) and waits for the status line to say the model is loaded. */
async function loaded(page: Page, load: () => Promise<unknown>): Promise<{ status: string; progress: LoadProgress[] }> {
  await load();
  const status = page.locator('#status');
  await expect.poll(() => status.innerText(), { timeout: 90_000, interval: 250 }).toMatch(/loaded in|Error/);
  // The last events may still be in flight from the Service Worker when /health turns 200.
  await expect
    .poll(() => page.evaluate(() => (window as unknown as { edgellmProgress: LoadProgress[] }).edgellmProgress.some((e) => e.stage === 'ready')))
    .toBe(true);
  const progress = await page.evaluate(() => (window as unknown as { edgellmProgress: LoadProgress[] }).edgellmProgress);
  return { status: await status.innerText(), progress };
}

/** A greedy completion through the page's API (the Service Worker's, or the app in the page: window.edgellmFetch). */
async function complete(page: Page, model: string, chat: boolean): Promise<string> {
  return page.evaluate(
    async ({ model, chat }) => {
      const params = { model, max_tokens: 12, temperature: 0 };
      const api = (window as unknown as { edgellmFetch: typeof fetch }).edgellmFetch;
      const response = await api(chat ? '/v1/chat/completions' : '/v1/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(
          chat ? { ...params, messages: [{ role: 'user', content: 'Once upon a time' }] } : { ...params, prompt: 'Once upon a time' },
        ),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error.message);
      return chat ? body.choices[0].message.content : body.choices[0].text;
    },
    { model, chat },
  );
}

async function stopServiceWorkers(context: BrowserContext, page: Page): Promise<void> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  await cdp.detach();
}

const downloads = (progress: LoadProgress[]) => progress.filter((e): e is Extract<LoadProgress, { stage: 'download' }> => e.stage === 'download');
const gets = (served: Served[], test: (path: string) => boolean) => served.filter((s) => s.method === 'GET' && test(s.path)).map((s) => s.path);

describe.skipIf(!hasChromium || !sharedModel(STORIES))(
  'examples/browser caches the model and the wasm across a Service Worker restart (Chromium)',
  () => {
    let browser: Browser;

    beforeAll(async () => {
      statSync(join(DIST_BROWSER, 'edgellm.sw.js')); // run `npm run build` (npm test does it) when this fails
      browser = await launchChromium();
    });

    afterAll(async () => {
      await browser?.close();
    });

    describe('an ONNX folder (stories260K)', () => {
      let site: Awaited<ReturnType<typeof server>>;
      let context: BrowserContext;
      let page: Page;
      let blocked: string[];
      let errors: string[];
      let first: { text: string; chat: string };
      const isModelFile = (path: string) => path.startsWith(`/models/${STORIES}/`);

      beforeAll(async () => {
        site = await server(SHARED_MODELS);
        ({ context, page, blocked, errors } = await openOffline(browser, site.url, { expectedConsole: (text) => text.includes('status of 503') }));
      });

      afterAll(async () => {
        await context?.close();
        await site?.close();
      });

      it('first load: downloads the files once, reporting each download, the wasm start and the session as progress events', async () => {
        const { status, progress } = await loaded(page, () => page.goto(`${site.url}/?model=${STORIES}`));
        expect(status).toMatch(
          new RegExp(
            `^${STORIES} \\(fp32\\) loaded in [\\d.]+ s, device: wasm \\((navigator.gpu has no adapter|no WebGPU in this host.*)\\), 1 thread, files cached as edgellm@[\\d.]+\\.`,
          ),
        );
        const onnx = downloads(progress).filter((e) => e.file === 'onnx/model.onnx');
        const size = statSync(join(SHARED_MODELS, STORIES, 'onnx/model.onnx')).size;
        expect(onnx[0]).toMatchObject({ source: 'network', loaded: 0, total: size, done: false });
        expect(onnx.at(-1)).toMatchObject({
          source: 'network',
          loaded: size,
          total: size,
          done: true,
          message: expect.stringMatching(/^Read onnx\/model.onnx \(.* MB\) from the network$/),
        });
        const wasm = downloads(progress).filter((e) => e.url.endsWith(WASM));
        expect(wasm.length).toBeGreaterThan(2); // the ~14 MB come in steps
        expect(wasm.at(-1)).toMatchObject({
          source: 'network',
          done: true,
          loaded: statSync(join(DIST_BROWSER, 'ort-wasm-simd-threaded.wasm')).size,
        });
        const stages = progress.map((e) => e.stage);
        for (const stage of ['cache', 'device', 'threads', 'wasm', 'session', 'ready']) expect(stages).toContain(stage);
        expect(stages.indexOf('wasm')).toBeLessThan(stages.indexOf('session'));
        expect(progress.find((e) => e.stage === 'threads')!.message).toMatch(/1 thread.*cannot start Workers/);
        expect(gets(site.served, isModelFile).sort()).toEqual(
          [
            `/models/${STORIES}/config.json`,
            `/models/${STORIES}/generation_config.json`,
            `/models/${STORIES}/onnx/model.onnx`,
            `/models/${STORIES}/tokenizer.json`,
            `/models/${STORIES}/tokenizer_config.json`,
          ].sort(),
        );
        expect(gets(site.served, (path) => path === WASM)).toEqual([WASM]);
        first = { text: await complete(page, STORIES, false), chat: await complete(page, STORIES, true) };
        expect(first.text).toMatch(/^, there was a little girl/);
      }, 120_000);

      it('after the Service Worker is stopped, a reload downloads nothing (one HEAD per file) and still answers the same', async () => {
        await stopServiceWorkers(context, page);
        site.served.length = 0;
        const { progress } = await loaded(page, () => page.reload());
        expect(gets(site.served, (path) => isModelFile(path) || path.endsWith('.wasm'))).toEqual([]);
        const heads = site.served.filter((s) => s.method === 'HEAD').map((s) => s.path);
        expect(heads.sort()).toEqual(
          [
            `/models/${STORIES}/config.json`,
            `/models/${STORIES}/generation_config.json`,
            `/models/${STORIES}/onnx/model.onnx`,
            `/models/${STORIES}/tokenizer.json`,
            `/models/${STORIES}/tokenizer_config.json`,
            WASM,
          ].sort(),
        );
        const read = downloads(progress).filter((e) => e.done);
        expect(read.length).toBe(6);
        expect(read.every((e) => e.source === 'cache')).toBe(true);
        expect(read.find((e) => e.file === 'onnx/model.onnx')!.message).toMatch(/from the cache$/);
        expect(await complete(page, STORIES, false)).toBe(first.text);
        expect(await complete(page, STORIES, true)).toBe(first.chat);
      }, 120_000);

      it('made no request off the loopback server, and logged no error', () => {
        expect(blocked).toEqual([]);
        expect(errors).toEqual([]);
      });
    });

    describe('a .gguf URL (a tiny GGUF the test writes)', () => {
      let dir: string;
      let site: Awaited<ReturnType<typeof server>>;
      let context: BrowserContext;
      let page: Page;
      const gguf = '/models/tiny-Q4_K.gguf';

      beforeAll(async () => {
        dir = mkdtempSync(join(tmpdir(), 'edgellm-browser-gguf-'));
        writeFileSync(join(dir, 'tiny-Q4_K.gguf'), tinyGguf('llama', { weights: 'Q4_K', embedding: 'Q8_0' }, { metadata: true }).bytes);
        site = await server(dir);
        ({ context, page } = await openOffline(browser, site.url, { expectedConsole: (text) => text.includes('status of 503') }));
      });

      afterAll(async () => {
        await context?.close();
        await site?.close();
        rmSync(dir, { recursive: true, force: true });
      });

      it('converts it in the tab, reporting the conversion, and reads it from the cache after a restart', async () => {
        const first = await loaded(page, () => page.goto(`${site.url}/?model=${encodeURIComponent(gguf)}`));
        expect(first.status).toMatch(/^tiny-Q4_K \(q4\) loaded in [\d.]+ s, device: wasm/);
        expect(first.progress.filter((e) => e.stage === 'gguf').map((e) => (e as { done: boolean }).done)).toEqual([false, true]);
        expect(downloads(first.progress).find((e) => e.file === 'models/tiny-Q4_K.gguf' && e.done)).toMatchObject({ source: 'network' });
        expect(gets(site.served, (path) => path === gguf)).toEqual([gguf]);
        const text = await complete(page, 'tiny-Q4_K', false);
        expect(text.length).toBeGreaterThan(0);

        await stopServiceWorkers(context, page);
        site.served.length = 0;
        const again = await loaded(page, () => page.reload());
        expect(gets(site.served, (path) => path === gguf || path.endsWith('.wasm'))).toEqual([]);
        expect(downloads(again.progress).find((e) => e.file === 'models/tiny-Q4_K.gguf' && e.done)).toMatchObject({ source: 'cache' });
        expect(again.progress.some((e) => e.stage === 'gguf')).toBe(true);
        expect(await complete(page, 'tiny-Q4_K', false)).toBe(text);
      }, 180_000);
    });
    describe('the app in the page (?in=page)', () => {
      let site: Awaited<ReturnType<typeof server>>;
      let context: BrowserContext;
      let page: Page;
      const modelGets = () => gets(site.served, (path) => path.startsWith(`/models/${STORIES}/`) || path.endsWith('.wasm')).length;

      beforeAll(async () => {
        site = await server(SHARED_MODELS);
        ({ context, page } = await openOffline(browser, site.url));
      });

      afterAll(async () => {
        await context?.close();
        await site?.close();
      });

      it('caches in the origin private file system when asked to: a reload downloads nothing', async () => {
        const first = await loaded(page, () => page.goto(`${site.url}/?model=${STORIES}&in=page&cache=opfs`));
        expect(first.status).toMatch(/1 thread, files cached as edgellm@[\d.]+\. Served by this page\.$/);
        expect(first.progress.find((e) => e.stage === 'cache')!.message).toMatch(
          /^Caching model files in the origin private file system as "edgellm@/,
        );
        expect(first.progress.find((e) => e.stage === 'threads')!.message).toMatch(/^wasm on 1 thread: the page is not cross-origin isolated/);
        expect(modelGets()).toBe(6);
        const text = await complete(page, STORIES, false);
        site.served.length = 0;
        const again = await loaded(page, () => page.reload());
        expect(modelGets()).toBe(0);
        expect(
          downloads(again.progress)
            .filter((e) => e.done)
            .every((e) => e.source === 'cache'),
        ).toBe(true);
        expect(await complete(page, STORIES, false)).toBe(text);
      }, 120_000);

      it('downloads the model again with the cache off', async () => {
        site.served.length = 0;
        const { status, progress } = await loaded(page, () => page.goto(`${site.url}/?model=${STORIES}&in=page&cache=off`));
        expect(status).not.toMatch(/cached as/);
        expect(progress.some((e) => e.stage === 'cache')).toBe(false);
        // The five model files; onnxruntime-web fetches its wasm itself then (the HTTP cache may answer it).
        expect(gets(site.served, (path) => path.startsWith(`/models/${STORIES}/`)).length).toBe(5);
      }, 120_000);
    });
  },
);

describe.skipIf(!hasChromium || !sharedModel(STORIES))('auto skips a software WebGPU adapter (Chromium with SwiftShader WebGPU)', () => {
  let browser: Browser;
  let site: Awaited<ReturnType<typeof server>>;

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
    });
    site = await server(SHARED_MODELS);
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
  });

  it('loads on wasm, saying the adapter is SwiftShader', async () => {
    const { context, page } = await openOffline(browser, site.url);
    try {
      await page.goto(`${site.url}/`);
      const adapter = await page.evaluate(async () => {
        type Gpu = { requestAdapter(): Promise<{ info: { isFallbackAdapter: boolean; architecture: string } } | null> };
        const found = await (navigator as unknown as { gpu?: Gpu }).gpu?.requestAdapter();
        return found && { fallback: found.info.isFallbackAdapter, architecture: found.info.architecture };
      });
      // The precondition: this Chromium does offer a software adapter.
      expect(adapter).toEqual({ fallback: true, architecture: 'swiftshader' });
      const { status, progress } = await loaded(page, () => page.goto(`${site.url}/?model=${STORIES}&in=page`));
      expect(status).toContain('device: wasm (the WebGPU adapter is SwiftShader, a software renderer, slower than wasm on the CPU, so wasm)');
      expect(progress.find((e) => e.stage === 'device')).toEqual({
        stage: 'device',
        device: 'wasm',
        message: 'Device: wasm (auto: the WebGPU adapter is SwiftShader, a software renderer, slower than wasm on the CPU, so wasm)',
      });
      expect(await complete(page, STORIES, false)).toMatch(/^, there was a little girl/);
    } finally {
      await context.close();
    }
  }, 120_000);
});
