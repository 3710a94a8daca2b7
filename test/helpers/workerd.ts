/**
 * The built Worker (dist/worker.js) in workerd through Miniflare, configured from the repository's
 * wrangler.toml like `npm run dev:worker`, with the model files from the shared models folder.
 */
import { build, type BuildOptions } from 'esbuild';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorkerDevServer, type WorkerDevServer } from '../../tools/workerd-dev/server.js';
import { requireBuild } from './cli-server.js';
import { SHARED_MODELS } from './shared-models.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function startWorkerd(vars: Record<string, string> = {}): Promise<WorkerDevServer> {
  requireBuild();
  return startWorkerDevServer({ root: ROOT, modelsDir: SHARED_MODELS, vars });
}

/**
 * A Worker script bundled as wrangler bundles it: esbuild into `out/index.js`, with each imported
 * `.wasm` kept as a CompiledWasm module of its own beside the script (wrangler's [[rules]]), which is
 * onnxruntime-web's built wasm here. Returns the modules to give Miniflare (`modulesRoot: out`).
 */
export async function bundleWorker(entry: string, out: string, options: Pick<BuildOptions, 'alias' | 'conditions' | 'nodePaths'>) {
  await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    outfile: join(out, 'index.js'),
    ...options,
    plugins: [{ name: 'wasm', setup: (b) => b.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: `./${args.path.split('/').pop()}`, external: true })) }],
    logLevel: 'silent',
  });
  copyFileSync(join(ROOT, 'dist/ort-wasm-simd-threaded.wasm'), join(out, 'ort-wasm-simd-threaded.wasm'));
  return [
    { type: 'ESModule' as const, path: join(out, 'index.js'), contents: readFileSync(join(out, 'index.js'), 'utf8') },
    { type: 'CompiledWasm' as const, path: join(out, 'ort-wasm-simd-threaded.wasm'), contents: readFileSync(join(out, 'ort-wasm-simd-threaded.wasm')) },
  ];
}
