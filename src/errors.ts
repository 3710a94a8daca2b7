/**
 * One error family, one place that builds the OpenAI error object.
 * `isInferenceError` checks a Symbol marker instead of `instanceof`, so it survives two copies
 * of the package in one bundle.
 * @module
 */

const MARKER = Symbol.for('edgellm.error');

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export interface ErrorInit {
  type?: ErrorType;
  param?: string | null;
  code?: string | null;
  headers?: Record<string, string>;
}

export class InferenceError extends Error {
  readonly [MARKER] = true;
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, init: ErrorInit = {}) {
    super(message);
    this.name = 'InferenceError';
    this.status = status;
    this.type = init.type ?? defaultType(status);
    this.param = init.param ?? null;
    this.code = init.code ?? null;
    this.headers = init.headers ?? {};
  }
}

function defaultType(status: number): ErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 409) return 'conflict_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'service_unavailable';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function isInferenceError(value: unknown): value is InferenceError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new InferenceError(400, message, { param, code });

export const notFound = (message: string, param: string | null = null, code: string | null = null) =>
  new InferenceError(404, message, { param, code });

/** `param` names the field to shorten: the runtime's own name, which each handler maps to its wire name. */
export function contextLengthExceeded(promptTokens: number, requested: number, contextLength: number, param: string) {

  return new InferenceError(
    400,
    `This model's maximum context length is ${contextLength} tokens. However, you requested ` +
      `${promptTokens + requested} tokens (${promptTokens} in the prompt, ${requested} for the completion). ` +
      'Please reduce the prompt or the completion length.',
    { param, code: 'context_length_exceeded' },
  );
}

/** The same error naming another field (a handler mapping a runtime field name to its wire name). */
export function withParam(error: InferenceError, param: string | null): InferenceError {
  const copy = new InferenceError(error.status, error.message, { type: error.type, param, code: error.code, headers: error.headers });
  copy.stack = error.stack;
  return copy;
}

/** The JSON body every error response carries. */
export function toErrorBody(error: InferenceError) {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

/** Any throwable -> OpenAI error Response. Unknown errors become a 500 with a generic message. */
export function toErrorResponse(error: unknown, onInternal?: (error: unknown) => void): Response {
  const known = isInferenceError(error)
    ? error
    : (onInternal?.(error), new InferenceError(500, 'The server had an error while processing your request.'));
  return new Response(JSON.stringify(toErrorBody(known)), {
    status: known.status,
    headers: { 'content-type': 'application/json', ...known.headers },
  });
}
