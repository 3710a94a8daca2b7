/**
 * The web chat page in headless Chromium, against real loopback servers: a scripted MockRuntime
 * (deterministic, slow enough to press Stop mid-reply) mounted under a basePath with API keys, and
 * the real `edgellm serve` CLI on stories260K. Every request that is not to the server is blocked
 * and recorded, which proves the page works offline. Screenshots go to test/.artifacts/ui-*.png.
 */
import type { Browser, Page } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/create-app.js';
import { serve, type RunningServer } from '../../src/adapters/node/serve.js';
import { contextLengthExceeded, InferenceError } from '../../src/errors.js';
import type { GenerateRequest, ModelInfo } from '../../src/runtime/types.js';
import { MockRuntime, type MockScript } from '../../src/testing/mock-runtime.js';
import { chromiumAvailable, launchChromium, openOffline, type OfflinePage } from '../helpers/chromium.js';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { rebundledUi } from '../helpers/rebundled-ui.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const ARTIFACTS = fileURLToPath(new URL('../.artifacts/', import.meta.url));
const hasChromium = chromiumAvailable();

// The reply arrives in many small pieces; it contains markdown and an injection attempt.
const LONG_REPLY = [
  '## A story\n\n', 'Once ', 'upon ', 'a ', '**time**', ', ', 'a ', 'fox ', '<img src=x onerror="window.pwned=1">', ' ', 'met ', 'a ',
  '`crow`', '.\n\n', '- one\n', '- two\n\n', '```js\n', 'let x = 1;\n', '```\n\n',
  ...Array.from({ length: 80 }, (_, i) => `word${i} `),
];
const SHORT_REPLY = ['Sure', ': ', '*done*', '.'];

class TwoModelRuntime extends MockRuntime {
  override models(): ModelInfo[] {
    const [first] = super.models();
    return [first, { ...first, id: 'mock-model-2', contextLength: 1024 }];
  }
}

function lastUserText(request: GenerateRequest): string {
  return request.input.kind === 'messages' ? request.input.messages[request.input.messages.length - 1].content : '';
}

function script(request: GenerateRequest): MockScript {
  const text = lastUserText(request);
  if (text === 'fail please') return { pieces: [], error: new InferenceError(429, 'The queue is full; retry later.') };
  if (text === 'no room left' && request.maxTokens !== undefined) return { pieces: [], error: contextLengthExceeded(400, request.maxTokens, 512, 'max_tokens') };
  if (text.startsWith('long')) return { pieces: LONG_REPLY, delayMs: 60 };
  return { pieces: SHORT_REPLY, delayMs: 20 };
}

async function open(
  browser: Browser, origin: string, url: string, viewport = { width: 1100, height: 760 }, colorScheme: 'light' | 'dark' = 'light',
): Promise<OfflinePage> {
  // HTTP error statuses (401, 429) are expected here and checked in the chat; any other console error is a failure.
  const opened = await openOffline(browser, origin, { viewport, colorScheme, expectedConsole: (text) => text.includes('the server responded with a status of') });
  const { page } = opened;
  const response = await page.goto(url);
  expect(response!.status()).toBe(200);
  return opened;
}

const replyText = (page: Page) => page.locator('.msg.assistant .body').last().innerText();
const until = async (check: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe.skipIf(!hasChromium)('web chat UI in Chromium (MockRuntime, basePath /llm, API key)', () => {
  let browser: Browser;
  let server: RunningServer;
  let opened: OfflinePage;
  let page: Page;
  const runtime = new TwoModelRuntime({ script });
  /** X-Session-Id of every chat request, for balancers' affinity. */
  const sessionHeaders: Array<string | null> = [];

  beforeAll(async () => {
    browser = await launchChromium();
    const app = createApp({ runtime, basePath: '/llm', apiKeys: ['sekret'] });
    const record = (request: Request) => {
      if (request.method === 'POST') sessionHeaders.push(request.headers.get('x-session-id'));
      return app.fetch(request);
    };
    server = await serve({ fetch: record }, { host: '127.0.0.1', port: 0 });
    opened = await open(browser, server.url, `${server.url}/llm/ui`);
    page = opened.page;
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('asks for the API key on 401, then lists the models', async () => {
    await expect.poll(() => page.locator('.msg.error').innerText()).toContain('Missing API key');
    expect(await page.locator('#api-key').isVisible()).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('api-key');
    await page.locator('#api-key').fill('sekret');
    await page.locator('#api-key').press('Enter');
    await expect.poll(() => page.locator('#model option').allInnerTexts()).toEqual(['mock-model', 'mock-model-2']);
    expect(await page.evaluate(() => sessionStorage.getItem('edgellm.apiKey'))).toBe('sekret');
    expect(await page.locator('#max_tokens').getAttribute('max')).toBe('2048');
    await page.locator('#new-session').click();
  });

  it('streams a markdown reply, and Stop keeps the partial reply and ends the generation on the server', async () => {
    await page.locator('#input').fill('long story please');
    await page.locator('#input').press('Enter');
    // Rendered as it streams: the bold piece comes early, the reply keeps growing after it.
    await page.locator('.msg.assistant .body strong').waitFor();
    expect(await page.locator('.msg.assistant .body strong').innerText()).toBe('time');
    expect(await page.locator('.msg.assistant .body h2').innerText()).toBe('A story');
    const early = (await replyText(page)).length;
    await expect.poll(async () => (await replyText(page)).length).toBeGreaterThan(early + 10);
    await page.waitForFunction(() => document.querySelector('.msg.assistant .body pre code') !== null);
    await page.screenshot({ path: `${ARTIFACTS}ui-streaming.png` });

    expect(runtime.cancelled).toBe(0);
    await page.locator('#stop').click();
    await page.locator('.msg.assistant.stopped').waitFor();
    expect(await page.locator('.msg.assistant .note').innerText()).toBe('Stopped.');
    await until(() => runtime.cancelled === 1);
    const stopped = await replyText(page);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await replyText(page)).toBe(stopped);
    expect(stopped).not.toContain('word79');
    // The reply's markup came through as text, never as an element.
    expect(stopped).toContain('<img src=x onerror="window.pwned=1">');
    expect(await page.locator('#log img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.locator('#send').isEnabled()).toBe(true);
    expect(await page.locator('#stop').isDisabled()).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}ui-stopped.png` });

    const request = runtime.requests[runtime.requests.length - 1];
    expect(request.model).toBe('mock-model');
    expect(request.maxTokens).toBe(256);
    expect(request.sampling).toMatchObject({ temperature: 0.7, topP: 0.9, topK: 40, numBeams: 1, repetitionPenalty: 1.1 });
  });

  it('sends the controls and the model picked, with the whole conversation', async () => {
    await page.locator('#temperature').fill('0.2');
    await page.locator('#top_k').fill('5');
    await page.locator('#num_beams').fill('2');
    await page.locator('#max_tokens').fill('');
    await page.locator('#json_output').check();
    expect(await page.locator('#beam-note').isVisible()).toBe(true);
    await page.locator('#model').selectOption('mock-model-2');
    const before = runtime.requests.length;
    await page.locator('#input').fill('short one');
    await page.locator('#send').click();
    await expect.poll(() => page.locator('#status').innerText()).toMatch(/^4 tokens in/);
    expect(await page.locator('.msg.assistant .body em').last().innerText()).toBe('done');

    expect(runtime.requests.length).toBe(before + 1);
    const request = runtime.requests[before];
    expect(request.model).toBe('mock-model-2');
    expect(request.maxTokens).toBeUndefined();
    expect(request.sampling).toMatchObject({ temperature: 0.2, topK: 5, numBeams: 2 });
    expect(request.constraint).toEqual({ spec: { kind: 'json' }, param: 'response_format' });
    await page.locator('#json_output').uncheck();
    const messages = request.input.kind === 'messages' ? request.input.messages : [];
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(messages[1].content).toContain('Once upon a **time**');
    expect(messages[2].content).toBe('short one');
  });

  it('Enter sends, Shift+Enter adds a line', async () => {
    const before = runtime.requests.length;
    await page.locator('#input').focus();
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    expect(await page.locator('#input').inputValue()).toBe('line one\nline two');
    expect(runtime.requests.length).toBe(before);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.msg.user .body').last().innerText()).toBe('line one\nline two');
    expect(await page.locator('#input').inputValue()).toBe('');
    await expect.poll(() => page.locator('#status').innerText()).toMatch(/tokens in/);
  });

  it('shows server errors in the chat and gives the message back', async () => {
    await page.locator('#input').fill('fail please');
    await page.locator('#input').press('Enter');
    await expect.poll(() => page.locator('.msg.error').last().innerText()).toContain('The queue is full; retry later.');
    expect(await page.locator('.msg.user').last().getAttribute('class')).toContain('unsent');
    expect(await page.locator('#input').inputValue()).toBe('fail please');
  });

  it('asks again without Max tokens when it no longer fits the context, and says so', async () => {
    await page.locator('#max_tokens').fill('256');
    const before = runtime.requests.length;
    const errors = await page.locator('.msg.error').count();
    await page.locator('#input').fill('no room left');
    await page.locator('#input').press('Enter');
    await expect.poll(() => page.locator('.msg.assistant').last().innerText()).toContain('did not fit the context left');
    expect(runtime.requests.slice(before).map((r) => r.maxTokens)).toEqual([256, undefined]);
    expect(await page.locator('.msg.error').count()).toBe(errors);
  });

  it('New session clears the conversation', async () => {
    // One conversation, one X-Session-Id (a balancer keeps it on one replica); a new session, a new id.
    const earlier = new Set(sessionHeaders);
    expect(earlier.size).toBe(1);
    expect([...earlier][0]).toMatch(/^\d+$/);
    await page.locator('#new-session').click();
    expect(await page.locator('#log .msg').count()).toBe(0);
    const before = runtime.requests.length;
    await page.locator('#input').fill('hello again');
    await page.locator('#input').press('Enter');
    await expect.poll(() => page.locator('#status').innerText()).toMatch(/tokens in/);
    const request = runtime.requests[before];
    expect(request.input.kind === 'messages' && request.input.messages.map((m) => m.content)).toEqual(['hello again']);
    expect(earlier.has(sessionHeaders.at(-1)!)).toBe(false);
    await page.screenshot({ path: `${ARTIFACTS}ui-chat.png` });
  });

  it('Escape stops too; New session during a reply ends it and starts clean', async () => {
    const cancelled = runtime.cancelled;
    await page.locator('#input').fill('long again');
    await page.locator('#input').press('Enter');
    await page.locator('.msg.assistant .body strong').last().waitFor();
    await page.keyboard.press('Escape');
    await page.locator('.msg.assistant.stopped').last().waitFor();
    await until(() => runtime.cancelled === cancelled + 1);

    await page.locator('#input').fill('long once more');
    await page.locator('#input').press('Enter');
    await page.locator('.msg.assistant .body strong').last().waitFor();
    await page.locator('#new-session').click();
    await until(() => runtime.cancelled === cancelled + 2);
    expect(await page.locator('#log .msg').count()).toBe(0);
    expect(await page.locator('#status').innerText()).toBe('New session.');
    const before = runtime.requests.length;
    await page.locator('#input').fill('fresh start');
    await page.locator('#input').press('Enter');
    await expect.poll(() => page.locator('#status').innerText()).toMatch(/tokens in/);
    // The interrupted turn did not leak into the new conversation.
    const request = runtime.requests[before];
    expect(request.input.kind === 'messages' && request.input.messages.map((m) => m.content)).toEqual(['fresh start']);
    expect(await page.locator('#log .msg').count()).toBe(2);
  });

  it('remembers the controls and model (localStorage) and the key for the tab (sessionStorage) across a reload', async () => {
    await page.reload();
    await expect.poll(() => page.locator('#status').innerText()).toBe('Ready: 2 models.');
    expect(await page.locator('#model').inputValue()).toBe('mock-model-2');
    expect(await page.locator('#temperature').inputValue()).toBe('0.2');
    expect(await page.locator('#num_beams').inputValue()).toBe('2');
    expect(await page.locator('#api-key').inputValue()).toBe('sekret');
    expect(await page.locator('#log .msg').count()).toBe(0);
  });

  it('made no request outside the server and logged no error', () => {
    expect(opened.blocked).toEqual([]);
    expect(opened.errors).toEqual([]);
  });
});

describe.skipIf(!hasChromium)('web chat UI in Chromium: narrow screen, no key, the page re-bundled with minify + keepNames', () => {
  let browser: Browser;
  let server: RunningServer;
  // A context smaller than the default max_tokens (256).
  const runtime = new MockRuntime({ contextLength: 100, script: { pieces: SHORT_REPLY, delayMs: 10 } });

  beforeAll(async () => {
    browser = await launchChromium();
    const app = createApp({ runtime });
    const { handleUi } = await rebundledUi();
    const ctx = { runtime: new MockRuntime(), maxBodyBytes: 0 };
    server = await serve({ fetch: (request) => (new URL(request.url).pathname === '/ui' ? handleUi(request, ctx) : app.fetch(request)) }, {
      host: '127.0.0.1', port: 0,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('fits a phone screen with the settings folded away (dark scheme)', async () => {
    const { page, blocked, errors } = await open(browser, server.url, `${server.url}/ui`, { width: 390, height: 760 }, 'dark');
    expect(await page.locator('#settings').getAttribute('open')).toBeNull();
    await expect.poll(() => page.locator('#max_tokens').inputValue()).toBe('50');
    await page.screenshot({ path: `${ARTIFACTS}ui-narrow-empty.png` });
    await page.locator('#input').fill('hi');
    await page.locator('#input').press('Enter');
    await expect.poll(() => page.locator('#status').innerText()).toMatch(/tokens in/);
    expect(await page.locator('.msg.assistant .body').innerHTML()).toBe('<p>Sure: <em>done</em>.</p>');
    expect(runtime.requests[0].maxTokens).toBe(50);
    // Nothing wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: `${ARTIFACTS}ui-narrow.png` });
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);

    // The browser enforces the page's CSP: a script that tried to load from elsewhere is refused
    // before it reaches the network.
    const violated = await page.evaluate(async () => {
      const seen = new Promise<string>((resolve) => document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true }));
      const fetched = await fetch('https://cdn.example.com/lib.js').then(() => 'loaded', () => 'refused');
      return `${fetched} ${await seen}`;
    });
    expect(violated).toBe('refused connect-src');
    expect(blocked).toEqual([]);
  });
});

const storiesDir = sharedModel(STORIES);

describe.skipIf(!hasChromium || !storiesDir)('web chat UI in Chromium against `edgellm serve` on stories260K', () => {
  let browser: Browser;
  let cli: CliServer;

  beforeAll(async () => {
    browser = await launchChromium();
    cli = await startCli([storiesDir!]);
  });
  afterAll(async () => {
    await browser?.close();
    await cli?.stop();
  });

  it('a new user opens /ui and chats, offline', async () => {
    const { page, blocked, errors } = await open(browser, new URL(cli.url).origin, `${cli.url}/ui`);
    await expect.poll(() => page.locator('#model option').allInnerTexts()).toEqual([STORIES]);
    await page.locator('#max_tokens').fill('60');
    await page.locator('#input').fill('Once upon a time');
    await page.locator('#input').press('Enter');
    await expect.poll(() => page.locator('#status').innerText(), { timeout: 30_000 }).toMatch(/^\d+ tokens in/);
    expect((await replyText(page)).trim().length).toBeGreaterThan(0);
    await page.screenshot({ path: `${ARTIFACTS}ui-stories260k.png` });

    // Beam search streams its reply in one piece at the end.
    await page.locator('#num_beams').fill('3');
    await page.locator('#input').fill('Tell me more');
    // Every status the page shows, recorded as it changes: a fast reply can replace the transient
    // "Beam search" status between two polls (and end on the same "60 tokens in 0.2 s" text as before).
    await page.evaluate(() => {
      const w = window as unknown as { statuses: string[] };
      const el = document.getElementById('status')!;
      w.statuses = [];
      new MutationObserver(() => w.statuses.push(el.textContent ?? '')).observe(el, { subtree: true, childList: true, characterData: true });
    });
    await page.locator('#input').press('Enter');
    await expect.poll(() => page.locator('.msg.assistant').count(), { timeout: 30_000 }).toBe(2);
    await expect.poll(() => page.evaluate(() => (window as unknown as { statuses: string[] }).statuses), { timeout: 30_000 })
      .toEqual(expect.arrayContaining([expect.stringMatching(/^Beam search/), expect.stringMatching(/^\d+ tokens in/)]));
    const statuses = await page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
    expect(statuses.findIndex((s) => s.startsWith('Beam search'))).toBeLessThan(statuses.findLastIndex((s) => /^\d+ tokens in/.test(s)));
    await expect.poll(() => page.locator('#status').innerText(), { timeout: 30_000 }).toMatch(/^\d+ tokens in/);
    expect((await replyText(page)).trim().length).toBeGreaterThan(0);
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
  });
});
