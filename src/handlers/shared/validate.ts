/**
 * Validates a parsed body against a zod schema; the first problem becomes a 400 naming the field.
 * @module
 */
import type { z } from 'zod';
import { invalidRequest } from '../../errors.js';

/** `unionFields`: top-level union fields whose errors should name the field inside the matching branch. */
export function validate<S extends z.ZodType>(schema: S, body: unknown, unionFields: string[] = []): z.output<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  const issue = unionFields.includes(String(first.path[0])) && first.path.length === 1 ? innermost(first) : first;
  const param = issue.path.length ? formatPath(issue.path) : null;
  throw invalidRequest(param ? `Invalid value for '${param}': ${issue.message}` : issue.message, param);
}

function formatPath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

type Issue = z.core.$ZodIssue;

/**
 * For a value that matches no branch of a union (`messages`: a string or a list), the problem in
 * the branch whose type it has, so the message names the field inside (`messages[1].role`).
 */
function innermost(issue: Issue): Issue {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return issue;
  const typed = issue.errors.find((branch) => branch.length > 0 && !(branch[0].code === 'invalid_type' && branch[0].path.length === 0));
  if (!typed) return issue;
  return { ...typed[0], path: [...issue.path, ...typed[0].path] } as Issue;
}
