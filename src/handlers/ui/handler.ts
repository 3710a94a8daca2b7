/**
 * GET /ui: the web chat page. It is public (the API calls it makes still need a key) and loads
 * nothing but itself: its Content-Security-Policy allows only its own inline script and style (by
 * hash) and requests to this origin, so a browser refuses any external load, and any markup that
 * slipped into a reply could not run script.
 * @module
 */
import type { Handler } from '../context.js';
import { uiPage } from './page.js';

interface BuiltPage {
  html: string;
  etag: string;
  csp: string;
}

let built: Promise<BuiltPage> | undefined;

export const handleUi: Handler = async (request) => {
  // Built once per process, on first use; a failure is not cached.
  built ??= buildPage().catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  const page = await built;
  const headers: Record<string, string> = {
    'cache-control': 'no-cache',
    etag: page.etag,
    'content-security-policy': page.csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (etagMatches(request.headers.get('if-none-match'), page.etag)) return new Response(null, { status: 304, headers });
  return new Response(page.html, { headers: { 'content-type': 'text/html; charset=utf-8', ...headers } });
};

export function contentSecurityPolicy(scriptHash: string, styleHash: string): string {
  return [
    "default-src 'none'",
    `script-src 'sha256-${scriptHash}'`,
    `style-src 'sha256-${styleHash}'`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** If-None-Match holds a list of (possibly weak) tags, or `*`. */
export function etagMatches(header: string | null, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

async function buildPage(): Promise<BuiltPage> {
  const page = uiPage();
  const [script, style, whole] = await Promise.all([page.script, page.style, page.html].map(sha256Base64));
  return { html: page.html, etag: `"${whole.slice(0, 27)}"`, csp: contentSecurityPolicy(script, style) };
}

async function sha256Base64(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...digest));
}
