/**
 * Swagger UI at /docs in headless Chromium, against real loopback servers: the `edgellm serve` CLI on
 * stories260K (what the README tells a new user to run), and an app with API keys under a basePath
 * (the Authorize dialog). Every request that is not to the server is refused and recorded, so an
 * empty record proves the docs work offline and load nothing from a CDN. Screenshot:
 * test/.artifacts/docs.png.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type RunningServer } from '../../src/adapters/node/serve.js';
import { swaggerUiAssets } from '../../src/adapters/node/swagger-assets.js';
import { createApp } from '../../src/app/create-app.js';
import { MockRuntime } from '../../src/testing/mock-runtime.js';
import { chromiumAvailable, launchChromium, openOffline, type OfflinePage } from '../helpers/chromium.js';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const ARTIFACTS = fileURLToPath(new URL('../.artifacts/', import.meta.url));
const hasChromium = chromiumAvailable();

async function open(browser: Browser, origin: string, path: string): Promise<OfflinePage> {
  const opened = await openOffline(browser, origin, { viewport: { width: 1280, height: 900 } });
  const { page } = opened;
  const response = await page.goto(`${origin}${path}`);
  expect(response!.status()).toBe(200);
  await page.locator('.swagger-ui .info .title', { hasText: 'edgellm' }).waitFor({ timeout: 20_000 });
  return opened;
}

/** Expands an operation, presses "Try it out" then "Execute", and returns its live response row. */
async function tryItOut(page: Page, operationId: string): Promise<Locator> {
  const operation = page.locator(`.opblock[id$="-${operationId}"]`);
  await operation.locator('.opblock-summary').first().click();
  await operation.locator('button.try-out__btn').click();
  await operation.locator('button.execute').click();
  const row = operation.locator('.live-responses-table .response');
  await row.first().waitFor({ timeout: 30_000 });
  return row.first();
}

describe.skipIf(!hasChromium)('Swagger UI at /docs in Chromium', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  describe.skipIf(!sharedModel(STORIES))('`edgellm serve` on stories260K', () => {
    let server: CliServer;

    beforeAll(async () => {
      server = await startCli([sharedModel(STORIES)!]);
    });

    afterAll(async () => {
      await server?.stop();
    });

    it('opens from / and /docs offline, and "Try it out" works for GET /v1/models and POST /v1/completions', async () => {
      // A browser at the root goes to the docs, as lmdeploy serves its swagger UI there.
      const { context, page, blocked, errors } = await open(browser, server.url, '/');
      try {
        expect(new URL(page.url()).pathname).toBe('/docs');
        for (const tag of ['OpenAI', 'lmdeploy', 'server']) await page.locator(`.opblock-tag[data-tag="${tag}"]`).waitFor();

        const models = await tryItOut(page, 'listModels');
        expect(await models.locator('.response-col_status').innerText()).toContain('200');
        expect(await models.locator('.response-col_description').innerText()).toContain(`"id": "${STORIES}"`);

        // The body editor starts with the first seed example (Chinese-LLaMA-Alpaca's prompt).
        const completion = await tryItOut(page, 'createCompletion');
        expect(await completion.locator('.response-col_status').innerText()).toContain('200');
        const body = await completion.locator('.response-col_description').innerText();
        expect(body).toContain('"object": "text_completion"');
        expect(body).toContain(`"model": "${STORIES}"`);
        const sent = await page.locator('.opblock[id$="-createCompletion"] .curl-command, .opblock[id$="-createCompletion"] .request-url').allInnerTexts();
        expect(sent.join('\n')).toContain('/v1/completions');

        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: `${ARTIFACTS}docs.png`, fullPage: true });
        expect(blocked).toEqual([]);
        expect(errors).toEqual([]);
      } finally {
        await context.close();
      }
    });
  });

  describe('with API keys under a basePath', () => {
    let server: RunningServer;

    beforeAll(async () => {
      const app = createApp({ runtime: new MockRuntime(), apiKeys: ['sk-docs'], basePath: '/llm', docsAssets: swaggerUiAssets() });
      server = await serve(app, { host: '127.0.0.1', port: 0 });
    });

    afterAll(async () => {
      await server?.close();
    });

    it('loads without a key, and "Authorize" sends the bearer key with "Try it out"', async () => {
      const { context, page, blocked, errors } = await open(browser, server.url, '/llm/docs');
      try {
        await page.locator('button.authorize').first().click();
        const dialog = page.locator('.modal-ux');
        await dialog.locator('input').first().fill('sk-docs');
        await dialog.locator('button.authorize').click();
        await dialog.locator('button.btn-done').click();

        const models = await tryItOut(page, 'listModels');
        expect(await models.locator('.response-col_status').innerText()).toContain('200');
        expect(await models.locator('.response-col_description').innerText()).toContain('"id": "mock-model"');
        const curl = await page.locator('.opblock[id$="-listModels"] .curl-command').innerText();
        expect(curl).toContain('Authorization: Bearer sk-docs');
        expect(curl).toContain(`${server.url}/llm/v1/models`);

        expect(blocked).toEqual([]);
        expect(errors).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('shows the 401 when no key is given', async () => {
      const { context, page } = await open(browser, server.url, '/llm/docs');
      try {
        const models = await tryItOut(page, 'listModels');
        expect(await models.locator('.response-col_status').innerText()).toContain('401');
        expect(await models.locator('.response-col_description').innerText()).toContain('invalid_api_key');
      } finally {
        await context.close();
      }
    });
  });
});
