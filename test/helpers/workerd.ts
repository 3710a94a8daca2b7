/**
 * The built Worker (dist/worker.js) in workerd through Miniflare, configured from the repository's
 * wrangler.toml like `npm run dev:worker`, with the model files from the shared models folder.
 */
import { fileURLToPath } from 'node:url';
import { startWorkerDevServer, type WorkerDevServer } from '../../tools/workerd-dev/server.js';
import { requireBuild } from './cli-server.js';
import { SHARED_MODELS } from './shared-models.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function startWorkerd(vars: Record<string, string> = {}): Promise<WorkerDevServer> {
  requireBuild();
  return startWorkerDevServer({ root: ROOT, modelsDir: SHARED_MODELS, vars });
}
