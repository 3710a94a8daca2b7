/**
 * Bearer API keys, compared in constant time so response timing reveals nothing about a key.
 * @module
 */
import { InferenceError } from '../errors.js';

export function checkApiKey(authorization: string | null, keys: string[]): void {
  const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  const given = match?.[1].trim() ?? '';
  let ok = false;
  for (const key of keys) ok = constantTimeEqual(given, key) || ok;
  if (!ok) {
    throw new InferenceError(401, match ? 'Incorrect API key provided.' : 'Missing API key: send Authorization: Bearer <key>.', {
      code: 'invalid_api_key',
      headers: { 'www-authenticate': 'Bearer' },
    });
  }
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i % (x.length || 1)] ?? 0) ^ (y[i % (y.length || 1)] ?? 0);
  return diff === 0;
}
