/**
 * Which Durable Object serves a request when a model runs on several (`SHARDS`). A Durable Object is
 * single-threaded: one per model is one decode loop for the whole world. Sessions pin to a shard
 * (their history and KV live there): the key is `X-Session-Id`, else a `/generate` body's
 * `session_id`. Other POSTs spread by a hash of their body (identical requests meet their cached
 * prefix); GETs (models, health, metrics) go to shard 0 unless they name a session.
 * @module
 */
import { InferenceError } from '../../errors.js';

/** SHARDS from the Worker's environment: 1 when unset; a bad value is a 503 naming it. */
export function parseShardCount(value: string | undefined): number {
  if (value === undefined || value === '') return 1;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new InferenceError(503, `SHARDS must be an integer from 1 to 1024, not ${JSON.stringify(value)}.`, { code: 'model_load_failed' });
  }
  return n;
}

/** FNV-1a, 32 bits: small, stable across runtimes, good enough to spread keys. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The session a request names, if any: the header first, then a /generate body's session_id (>= 0). */
export function sessionOf(header: string | null, body: unknown): string | undefined {
  const fromHeader = header?.trim();
  if (fromHeader) return fromHeader;
  const id = (body as { session_id?: unknown } | null)?.session_id;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 ? String(id) : undefined;
}

/** The shard (0..shards-1) for a request; reads a POST body from a clone, so the request stays unread. */
export async function pickShard(request: Request, shards: number): Promise<number> {
  if (shards <= 1) return 0;
  const header = request.headers.get('x-session-id');
  if (request.method !== 'POST') return header?.trim() ? fnv1a(`session:${header.trim()}`) % shards : 0;
  const text = header?.trim() ? '' : await request.clone().text().catch(() => '');
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: the app answers 400 wherever it lands
  }
  const session = sessionOf(header, body);
  return fnv1a(session !== undefined ? `session:${session}` : `body:${text}`) % shards;
}

/** The Durable Object name of a shard: shard 0 keeps the model's name (one shard = the old layout). */
export const shardName = (model: string, shard: number) => (shard === 0 ? model : `${model}#${shard}`);
