/**
 * Validates a parsed body against a zod schema; the first problem becomes a 400 naming the field
 * and the rule it broke (a union says what each accepted form expected, not just "Invalid input").
 * @module
 */
import type { z } from 'zod';
import { invalidRequest } from '../../errors.js';

type Issue = z.core.$ZodIssue;

export function validate<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue.path.length ? formatPath(issue.path) : null;
  const rule = describe(issue);
  if (!param) throw invalidRequest(rule);
  if (isMissing(issue)) throw invalidRequest(`'${param}' is required.`, param);
  throw invalidRequest(`Invalid value for '${param}': ${rule}`, param);
}

/** What the rule is, in words: zod's message without its generic "Invalid input:" prefix. */
export function describe(issue: Issue): string {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const forms = issue.errors.map((branch) => {
      const first = branch[0];
      if (!first) return 'a different form';
      const where = first.path.length ? `${formatPath(first.path, true)} ` : '';
      return `${where}${describe(first)}`;
    });
    return `it matches none of the accepted forms (${[...new Set(forms)].join('; ')}).`;
  }
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}.`;
  return issue.message.replace(/^Invalid input: /, '');
}

/** The field is absent (for a union: absent for every accepted form). */
function isMissing(issue: Issue): boolean {
  if (issue.code === 'invalid_type') return issue.message.endsWith('received undefined');
  if (issue.code === 'invalid_union') return issue.errors.length > 0 && issue.errors.every((b) => b[0] && b[0].path.length === 0 && isMissing(b[0]));
  return false;
}

function formatPath(path: PropertyKey[], relative = false): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 && !relative ? String(p) : `.${String(p)}`)).join('');
}
