/**
 * Headless Chromium for browser tests: Debian's `chromium` driven by playwright-core (no download).
 * Without a Chromium the suites skip with a message, unless EDGELLM_REQUIRE_CHROMIUM is set (as in CI),
 * where a missing browser is a failure.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export const CHROMIUM_PATH = CANDIDATES.find((path): path is string => !!path && existsSync(path));

/** True when browser suites should run; logs why when they skip. */
export function chromiumAvailable(): boolean {
  if (CHROMIUM_PATH) return true;
  if (process.env.EDGELLM_REQUIRE_CHROMIUM) throw new Error('Chromium is required (EDGELLM_REQUIRE_CHROMIUM) but none was found; set CHROMIUM_PATH');
  console.warn('[edgellm tests] skipping browser tests: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)');
  return false;
}

export function launchChromium(): Promise<Browser> {
  if (!CHROMIUM_PATH) throw new Error('no Chromium');
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

export interface OfflinePage {
  context: BrowserContext;
  page: Page;
  /** Requests the page (or its workers) tried to make anywhere but `origin`: all were refused. */
  blocked: string[];
  /** Uncaught errors and console errors (a CSP violation is one), minus those `expectedConsole` allows. */
  errors: string[];
}

export interface OfflineOptions {
  viewport?: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
  /** Console errors the test expects (e.g. a 503 while loading); others are collected in `errors`. */
  expectedConsole?: (text: string) => boolean;
}

/** A fresh context and page that can reach only `origin`, as on a machine with no network. */
export async function openOffline(browser: Browser, origin: string, options: OfflineOptions = {}): Promise<OfflinePage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1100, height: 760 }, colorScheme: options.colorScheme ?? 'light' });
  const blocked: string[] = [];
  const errors: string[] = [];
  // Context routes see the page's and its Service Workers' requests alike.
  await context.route('**/*', (route) => {
    const target = route.request().url();
    if (target.startsWith(`${origin}/`)) return route.continue();
    blocked.push(target);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !options.expectedConsole?.(message.text())) errors.push(message.text());
  });
  return { context, page, blocked, errors };
}
