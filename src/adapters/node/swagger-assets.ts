/**
 * swaggerUiAssets(): Swagger UI's static files for `/docs`, read from the installed swagger-ui-dist
 * package (a dependency), so the docs work offline and nothing comes from a CDN.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AssetSource } from '../../handlers/context.js';
import { SWAGGER_UI_FILES } from '../../handlers/docs/swagger-page.js';

/** The swagger-ui-dist directory, resolved like an import from this module (works from src/ and dist/). */
export function swaggerUiDistDir(): string {
  // The package has no "exports" map, so any of its files resolves; its main is index.js at the root.
  return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

/**
 * Serves the files the docs page loads, and nothing else; each is read once, on first request.
 * @example
 * const app = createApp({ runtime, docsAssets: swaggerUiAssets() });   // Swagger UI at /docs
 */
export function swaggerUiAssets(dir: string = swaggerUiDistDir()): AssetSource {
  const cache = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  return async (name) => {
    const type = Object.hasOwn(SWAGGER_UI_FILES, name) ? SWAGGER_UI_FILES[name] : undefined;
    if (!type) return undefined;
    // Copied into a plain Uint8Array: a Buffer may sit in a larger shared ArrayBuffer.
    if (!cache.has(name)) cache.set(name, readFile(join(dir, name)).then((buffer) => new Uint8Array(buffer)));
    const bytes = await cache.get(name)!;
    return new Response(bytes, { headers: { 'content-type': type, 'content-length': String(bytes.byteLength) } });
  };
}
