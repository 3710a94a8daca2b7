/**
 * Validates a parsed body against a zod schema; the first problem becomes a 400 naming the field.
 * @module
 */
import type { z } from 'zod';
import { invalidRequest } from '../../errors.js';

export function validate<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue.path.length ? formatPath(issue.path) : null;
  throw invalidRequest(param ? `Invalid value for '${param}': ${issue.message}` : issue.message, param);
}

function formatPath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}
