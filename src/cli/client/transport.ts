/**
 * HTTP for `edgellm client`: one fetch wrapper that turns the two ways a turn fails into
 * messages a person can act on: the server cannot be reached (is it running?), or it answered
 * an error (its OpenAI error message, with the status).
 * @module
 */

/** A failure to show the user; `message` is one line. */
export class ClientError extends Error {}

export class UnreachableError extends ClientError {}

export class ServerError extends ClientError {
  constructor(
    message: string,
    /** HTTP status; for an error sent inside a stream, the status the error object names, if any. */
    readonly status: number | undefined,
    readonly type: string | undefined,
    readonly code: string | number | undefined,
  ) {
    super(message);
  }
}

interface ErrorFields {
  message?: unknown;
  type?: unknown;
  code?: unknown;
}

/**
 * The error in a response body: OpenAI's `{"error": {...}}`, lmdeploy's flat
 * `{"message", "type", "code"}`, FastAPI's `{"detail"}`, or plain text.
 */
export function parseErrorBody(text: string): { message: string; type?: string; code?: string | number } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { message: text.trim().slice(0, 300) || 'no message' };
  }
  const root = (json ?? {}) as { error?: unknown; detail?: unknown } & ErrorFields;
  const fields: ErrorFields = typeof root.error === 'object' && root.error !== null ? (root.error as ErrorFields) : root;
  const message =
    typeof fields.message === 'string'
      ? fields.message
      : typeof root.error === 'string'
        ? root.error
        : root.detail !== undefined
          ? typeof root.detail === 'string' ? root.detail : JSON.stringify(root.detail)
          : text.trim().slice(0, 300);
  return {
    message,
    type: typeof fields.type === 'string' ? fields.type : undefined,
    code: typeof fields.code === 'string' || typeof fields.code === 'number' ? fields.code : undefined,
  };
}

/** An HTTP error answer as one line: `401 authentication_error: Missing API key...`. */
export function serverError(status: number, text: string, hasKey: boolean): ServerError {
  const { message, type, code } = parseErrorBody(text);
  let line = `the server answered ${status}${type ? ` ${type}` : ''}: ${message}`;
  if (status === 401) line += hasKey ? ' (check --api-key or EDGELLM_API_KEY)' : ' (pass --api-key KEY or set EDGELLM_API_KEY)';
  return new ServerError(line, status, type, code);
}

/** An error object sent inside a stream (`{"error": {...}}` as an NDJSON line or SSE event). */
export function streamError(value: unknown): ServerError | undefined {
  const error = (value as { error?: unknown } | null)?.error;
  if (error === undefined || error === null) return undefined;
  const { message, type, code } = parseErrorBody(JSON.stringify(value));
  const status = typeof code === 'number' ? code : undefined;
  return new ServerError(`the server failed during the reply${type ? ` (${type})` : ''}: ${message}`, status, type, code);
}

/**
 * What is under fetch's `TypeError: fetch failed`: the system error code (ECONNREFUSED,
 * ENOTFOUND, ...) or else the innermost message ("bad port").
 */
export function networkErrorDetail(error: unknown): string {
  let detail = (error as Error)?.message ?? String(error);
  let current = error as { code?: unknown; message?: unknown; errors?: unknown[]; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 5; depth++) {
    if (typeof current.code === 'string') return current.code;
    if (depth > 0 && typeof current.message === 'string' && current.message) detail = current.message;
    // Happy-eyeballs failures come as an AggregateError of one error per address.
    current = (current.cause ?? current.errors?.[0]) as typeof current;
  }
  return detail;
}

export interface TransportOptions {
  url: string;
  apiKey?: string;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** A JSON body makes it a POST. */
  body?: unknown;
  signal?: AbortSignal;
  /** Statuses handed back as responses instead of thrown (e.g. 503 from /health while loading). */
  accept?: number[];
  /** More request headers (e.g. X-Session-Id for a balancer). */
  headers?: Record<string, string>;
}

export interface Transport {
  readonly url: string;
  request(path: string, options?: RequestOptions): Promise<Response>;
}

/** `host:port` -> `http://host:port`, without a trailing slash. */
export function normalizeUrl(url: string): string {
  const withScheme = /^[a-z][a-z\d+.-]*:\/\//i.test(url) ? url : `http://${url}`;
  const parsed = new URL(withScheme);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ClientError(`${url}: only http:// and https:// URLs are supported`);
  return withScheme.replace(/\/+$/, '');
}

export function createTransport(options: TransportOptions): Transport {
  const url = normalizeUrl(options.url);
  const doFetch = options.fetch ?? fetch;
  return {
    url,
    async request(path, { body, signal, accept = [], headers: extra = {} } = {}) {
      const headers: Record<string, string> = { accept: 'application/json, application/x-ndjson, text/event-stream', ...extra };
      if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      let response: Response;
      try {
        response = await doFetch(`${url}${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        if (signal?.aborted) throw error;
        throw new UnreachableError(`cannot reach ${url}: is \`edgellm serve\` running? (${networkErrorDetail(error)})`);
      }
      if (!response.ok && !accept.includes(response.status)) {
        throw serverError(response.status, await response.text().catch(() => ''), Boolean(options.apiKey));
      }
      return response;
    },
  };
}
