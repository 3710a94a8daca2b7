/**
 * Headless Chromium for browser tests: Debian's `chromium` driven by playwright-core (no download).
 * Without a Chromium the suites skip with a message, unless EDGELLM_REQUIRE_CHROMIUM is set (as in CI),
 * where a missing browser is a failure.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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
