/**
 * Shared helpers for handler tests that call `app.fetch` in-process.
 */
import { expect } from 'vitest';
import type { App } from '../../src/app/create-app.js';

export type Json = any;

/** POSTs a JSON body (or a raw string) to the app. */
export function postJson(app: App, url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return app.fetch(
    new Request(url, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      ...init,
    }),
  );
}

/** Parses an SSE body: the JSON payloads before the final `data: [DONE]`, which must be there exactly once, last. */
export async function readSse(res: Response): Promise<Json[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  expect(res.headers.get('cache-control')).toBe('no-cache');
  const raw = await res.text();
  expect(raw.endsWith('data: [DONE]\n\n')).toBe(true);
  const payloads = raw
    .split('\n\n')
    .filter((b) => b !== '')
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      return block.slice(6);
    });
  expect(payloads.filter((p) => p === '[DONE]')).toHaveLength(1);
  return payloads.slice(0, -1).map((p) => JSON.parse(p));
}

/** Asserts an OpenAI-format 400 naming `param` and returns the body. */
export async function expect400(res: Response, param: string | null, code: string | null = null): Promise<Json> {
  expect(res.status).toBe(400);
  const body: Json = await res.json();
  expect(body).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param, code } });
  return body;
}
