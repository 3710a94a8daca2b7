/**
 * createApp: every endpoint as one standard fetch handler, `(Request) => Promise<Response>`.
 * It knows no platform: host it in Node, a Worker, a browser, or mount it in Hono or itty-router.
 * @module
 */
import { cors, Router, type IRequest } from 'itty-router';
import { InferenceError, notFound, toErrorResponse } from '../errors.js';
import { handleChatCompletions } from '../handlers/chat-completions/handler.js';
import { handleCompletions } from '../handlers/completions/handler.js';
import type { AssetSource, Handler, HandlerContext } from '../handlers/context.js';
import { handleDocsFile, handleDocsPage, handleOpenApi } from '../handlers/docs/handler.js';
import { handleEmbeddings } from '../handlers/embeddings/handler.js';
import { handleGenerate } from '../handlers/generate/handler.js';
import { handleHealth, handleRoot } from '../handlers/health/handler.js';
import { handleListModels, handleRetrieveModel } from '../handlers/models/handler.js';
import { handleUi } from '../handlers/ui/handler.js';
import { checkApiKey } from './api-key.js';
import { meterRequest, type RequestLog } from './request-log.js';
import type { InferenceRuntime } from '../runtime/types.js';

export interface AppOptions {
  runtime: InferenceRuntime;
  /** Bearer keys; when set, every endpoint except `/`, `/health`, the docs and `/ui` requires one. */
  apiKeys?: string[];
  /** Allowed CORS origins ('*' for any); no CORS headers when unset. */
  cors?: string[] | '*';
  /**
   * Largest accepted request body (413 beyond it). Default: derived from the served context,
   * 256 bytes per context token and at least 1 MiB, so no body is much larger than any prompt
   * the model could take.
   */
  maxBodyBytes?: number;
  /** Longest wait for a request body to arrive, in ms (408 after it); default 60 s, 0 = no limit. */
  requestTimeoutMs?: number;
  /** Mount point, e.g. '/llm' serves '/llm/v1/models'. */
  basePath?: string;
  /** Unexpected (500) errors are reported here. */
  onError?: (error: unknown) => void;
  /** Called once per request when its response body has ended (access logs, metrics). */
  onRequestLog?: (log: RequestLog) => void;
  /**
   * Swagger UI's static files for `/docs` (`swaggerUiAssets()` from `edgellm/node`, or a Worker's
   * assets binding). Without it `/docs` says how to enable it; `/openapi.json` works regardless.
   */
  docsAssets?: AssetSource;
}

export interface App {
  fetch(request: Request, ...rest: unknown[]): Promise<Response>;
}

type Route = [method: 'GET' | 'POST', path: string, handler: (request: IRequest, ctx: HandlerContext) => Promise<Response>];

const on = (handler: Handler) => (request: IRequest, ctx: HandlerContext) => handler(request as unknown as Request, ctx);

/** Exported for the OpenAPI tests: every route here must be in the document (or be a browser page). */
export const ROUTES: Route[] = [
  ['GET', '/', on(handleRoot)],
  ['GET', '/health', on(handleHealth)],
  ['GET', '/v1/models', on(handleListModels)],
  ['GET', '/v1/models/:id+', (request, ctx) => handleRetrieveModel(decodeModelId(request.params.id), ctx)],
  ['POST', '/v1/completions', on(handleCompletions)],
  ['POST', '/v1/chat/completions', on(handleChatCompletions)],
  ['POST', '/v1/embeddings', on(handleEmbeddings)],
  ['POST', '/generate', on(handleGenerate)],
  ['GET', '/openapi.json', on(handleOpenApi)],
  ['GET', '/docs', on(handleDocsPage)],
  ['GET', '/docs/:file', (request, ctx) => handleDocsFile(request.params.file, ctx)],
  ['GET', '/ui', on(handleUi)],
];

/** A model id from the path; a malformed escape (`%ZZ`) names no model, so it is a 404, not a URIError. */
function decodeModelId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw notFound(`The model \`${raw}\` does not exist (the id is not valid percent-encoding).`, 'model', 'model_not_found');
  }
}

/** The default body limit for a runtime: 256 bytes per token of the longest context, at least 1 MiB. */
export function defaultMaxBodyBytes(runtime: InferenceRuntime): number {
  const context = runtime.status() === 'ready' ? Math.max(0, ...runtime.models().map((m) => m.contextLength)) : 0;
  return Math.max(1024 * 1024, context * 256);
}

const PUBLIC_PATHS = new Set(['/', '/health', '/openapi.json', '/docs', '/ui']);
const isPublic = (path: string) => PUBLIC_PATHS.has(path) || path.startsWith('/docs/');

export function createApp(options: AppOptions): App {
  const base = (options.basePath ?? '').replace(/\/+$/, '');
  const ctx: HandlerContext = {
    runtime: options.runtime,
    maxBodyBytes: options.maxBodyBytes ?? 0,
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    onError: options.onError,
    basePath: base,
    authRequired: !!options.apiKeys?.length,
    docsAssets: options.docsAssets,
  };
  const { preflight, corsify } = cors({
    origin: options.cors === '*' ? '*' : (options.cors ?? []),
    allowMethods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
    allowHeaders: ['authorization', 'content-type'],
    maxAge: 600,
  });
  const router = Router<IRequest, [HandlerContext]>({
    base,
    before: [
      ...(options.cors ? [preflight] : []),
      (request) => {
        const path = new URL(request.url).pathname.slice(base.length) || '/';
        if (options.apiKeys?.length && !isPublic(path)) checkApiKey(request.headers.get('authorization'), options.apiKeys);
      },
    ],
    catch: (error) => toErrorResponse(error, options.onError),
    finally: options.cors ? [(response: Response, request: IRequest) => withCors(response, request as unknown as Request)] : [],
  });
  for (const [method, path, handler] of ROUTES) router[method === 'GET' ? 'get' : 'post'](path, handler);
  router.all('*', (request: IRequest) => {
    throw unmatched(request.method, new URL(request.url).pathname.slice(base.length) || '/');
  });

  // A response that depends on the Origin header must say so, or a shared cache serves one origin's
  // answer to another (only '*' answers every origin alike).
  const withCors = (response: Response, request: Request): Response => {
    const out = corsify(response, request);
    if (options.cors === '*') return out;
    try {
      out.headers.append('vary', 'Origin');
      return out;
    } catch {
      // Immutable headers (a fetched or redirect response): copy them.
      const copy = new Response(out.body, out);
      copy.headers.append('vary', 'Origin');
      return copy;
    }
  };

  const respond = async (request: Request, context: HandlerContext): Promise<Response> => {
    const path = new URL(request.url).pathname;
    // Outside the mount point nothing exists: always 404 (the route table holds paths relative to the base).
    if (base && path !== base && !path.startsWith(`${base}/`)) {
      const response = toErrorResponse(unknownRoute(request.method, path));
      return options.cors ? withCors(response, request) : response;
    }
    // HEAD is GET without the body (RFC 9110), for every GET route.
    if (request.method === 'HEAD') {
      const get = new Request(request.url, { method: 'GET', headers: request.headers, signal: request.signal });
      const response = (await router.fetch(get as unknown as IRequest, context)) as Response;
      await response.body?.cancel();
      return new Response(null, { status: response.status, statusText: response.statusText, headers: response.headers });
    }
    return (await router.fetch(request as unknown as IRequest, context)) as Response;
  };

  return {
    fetch: async (request) => {
      const perRequest = { ...ctx, maxBodyBytes: options.maxBodyBytes ?? defaultMaxBodyBytes(ctx.runtime) };
      const onLog = options.onRequestLog;
      if (!onLog) return respond(request, perRequest);
      const meter = meterRequest(ctx.runtime, request);
      return meter.finish(await respond(request, { ...perRequest, runtime: meter.runtime }), onLog);
    },
  };
}

/** 405 when the path exists with another method, else 404. */
function unmatched(method: string, path: string): InferenceError {
  const allowed = ROUTES.filter(([, p]) => matches(p, path)).flatMap(([m]) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
  if (allowed.length > 0) {
    return new InferenceError(405, `Method ${method} is not allowed on ${path}; use ${allowed.join(' or ')}.`, {
      type: 'invalid_request_error',
      headers: { allow: allowed.join(', ') },
    });
  }
  return unknownRoute(method, path);
}

function unknownRoute(method: string, path: string): InferenceError {
  return new InferenceError(404, `Unknown route ${method} ${path}.`, { code: 'unknown_route' });
}

function matches(pattern: string, path: string): boolean {
  const segment = (s: string) => (s.startsWith(':') ? (s.endsWith('+') ? '.+' : '[^/]+') : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${pattern.split('/').map(segment).join('/')}$`).test(path);
}
