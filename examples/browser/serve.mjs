// node serve.mjs [--isolate] [models folder]   then open http://127.0.0.1:8080/?model=karpathy__stories260K
// A static server for the example: the page and sw.js from this folder, the browser bundle under
// /edgellm/, the models folder under /models/. The API itself is answered inside the tab.
// --isolate sends Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy, which make the page
// cross-origin isolated: then `?in=page` runs onnxruntime-web's wasm on several threads.
// Files have an ETag (size and mtime), so the page's file cache can tell when one changed.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** @type {Record<string, string>} */
const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

const here = dirname(fileURLToPath(import.meta.url));

/** dist/browser of the installed edgellm package, else of this repository. */
export function browserBundleDir() {
  try {
    const pkg = createRequire(import.meta.url).resolve('edgellm/package.json');
    return join(dirname(pkg), 'dist', 'browser');
  } catch {
    return resolve(here, '../../dist/browser');
  }
}

/**
 * The request path -> a file under one of the roots, or undefined (never outside a root).
 * @param {string} pathname
 * @param {Array<[prefix: string, dir: string]>} roots
 */
function fileFor(pathname, roots) {
  for (const [prefix, root] of roots) {
    if (!pathname.startsWith(prefix)) continue;
    let rest;
    try {
      rest = decodeURIComponent(pathname.slice(prefix.length));
    } catch {
      return undefined;
    }
    if (rest === '' || rest.endsWith('/')) rest += 'index.html';
    const file = resolve(root, rest);
    if (file !== root && !file.startsWith(root + sep)) return undefined;
    return existsSync(file) && statSync(file).isFile() ? file : undefined;
  }
  return undefined;
}

/**
 * Starts the server. `onRequest(pathname, method)` sees every request (the tests use it to check that
 * the API calls never reach the network, and that a reload downloads nothing).
 * @param {{ port?: number, host?: string, models?: string, dist?: string, isolate?: boolean, onRequest?: (pathname: string, method: string) => void }} [options]
 * @returns {Promise<{ url: string, close: () => Promise<unknown> }>}
 */
export function startServer({ port = 8080, host = '127.0.0.1', models = resolve(here, '../../../shared/models'), dist = browserBundleDir(), isolate = false, onRequest } = {}) {
  /** @type {Array<[string, string]>} */
  const roots = [['/edgellm/', resolve(dist)], ['/models/', resolve(models)], ['/', here]];
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    onRequest?.(pathname, req.method ?? 'GET');
    const file = (req.method === 'GET' || req.method === 'HEAD') && fileFor(pathname, roots);
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}\n`);
      return;
    }
    const { size, mtimeMs } = statSync(file);
    res.writeHead(200, {
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': 'no-cache',
      etag: `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`,
      ...(isolate && { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }),
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: actual } = /** @type {import('node:net').AddressInfo} */ (server.address());
      done({ url: `http://${host}:${actual}`, close: () => new Promise((closed) => server.close(closed)) });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const isolate = args.includes('--isolate');
  const folder = args.find((arg) => !arg.startsWith('--'));
  const models = resolve(folder ?? resolve(here, '../../../shared/models'));
  const dist = browserBundleDir();
  if (!existsSync(join(dist, 'edgellm.sw.js'))) {
    console.error(`no browser bundle at ${dist}: run \`npm run build\` in the edgellm repository`);
    process.exit(1);
  }
  const { url } = await startServer({ port: Number(process.env.PORT ?? 8080), models, dist, isolate });
  console.log(`serving ${here}, the bundle from ${dist} and the models from ${models}${isolate ? ', cross-origin isolated' : ''}`);
  console.log(`open ${url}/?model=karpathy__stories260K${isolate ? ` (or ${url}/?model=karpathy__stories260K&in=page for threads)` : ''}`);
}
