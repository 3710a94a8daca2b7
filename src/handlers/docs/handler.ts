/**
 * GET /openapi.json, GET /docs (Swagger UI) and GET /docs/{file} (its static files). All public,
 * even with API keys: the keys are entered in Swagger UI's "Authorize" dialog.
 * @module
 */
import { notFound } from '../../errors.js';
import type { HandlerContext } from '../context.js';
import { jsonResponse } from '../shared/stream-response.js';
import { buildOpenApiDocument } from './openapi.js';
import { DOCS_CSP, INITIALIZER_FILE, missingAssetsPage, swaggerInitializer, swaggerPage, SWAGGER_UI_FILES } from './swagger-page.js';

const base = (ctx: HandlerContext) => ctx.basePath ?? '';

export async function handleOpenApi(_request: Request, ctx: HandlerContext): Promise<Response> {
  return jsonResponse(buildOpenApiDocument({ basePath: base(ctx), authRequired: ctx.authRequired, metricsPublic: ctx.metricsPublic }));
}

export async function handleDocsPage(_request: Request, ctx: HandlerContext): Promise<Response> {
  if (!ctx.docsAssets) return html(missingAssetsPage(base(ctx)), 404);
  return html(swaggerPage(base(ctx)), 200);
}

export async function handleDocsFile(name: string, ctx: HandlerContext): Promise<Response> {
  if (name === INITIALIZER_FILE && ctx.docsAssets) {
    return new Response(swaggerInitializer(base(ctx)), { headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' } });
  }
  // Only the listed files, whatever the asset source could reach.
  const type = Object.hasOwn(SWAGGER_UI_FILES, name) ? SWAGGER_UI_FILES[name] : undefined;
  const found = type && ctx.docsAssets ? await ctx.docsAssets(name) : undefined;
  if (!type || !found || !found.ok) {
    const why = ctx.docsAssets ? '' : ' This server has no source for Swagger UI files (see /docs).';
    throw notFound(`No docs file '${name}'.${why}`, null, 'unknown_route');
  }
  const headers = new Headers(found.headers);
  // Ours, not the source's guess: a string or bytes body would say text/plain or nothing.
  headers.set('content-type', type);
  if (!headers.has('cache-control')) headers.set('cache-control', 'public, max-age=86400');
  return new Response(found.body, { status: 200, headers });
}

function html(body: string, status: number): Response {
  return new Response(body, {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DOCS_CSP, 'cache-control': 'no-cache' },
  });
}
