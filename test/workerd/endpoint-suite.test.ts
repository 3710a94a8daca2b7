/**
 * The shared endpoint suite inside workerd: the built Worker (onnxruntime-web, wasm) in Miniflare
 * with wrangler.toml's configuration, model files through the static-assets binding.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import type { WorkerDevServer } from '../../tools/workerd-dev/server.js';
import { endpointSuite, SUITE_EMBEDDING_MODEL, SUITE_MODEL } from '../helpers/endpoint-suite.js';
import { sharedModel } from '../helpers/shared-models.js';
import { startWorkerd } from '../helpers/workerd.js';

const ready = sharedModel(SUITE_MODEL) && sharedModel(SUITE_EMBEDDING_MODEL);

describe.skipIf(!ready)('the Worker in workerd (Miniflare)', () => {
  let worker: WorkerDevServer;
  beforeAll(async () => {
    worker = await startWorkerd({ MODEL: SUITE_MODEL, EMBEDDING_MODEL: SUITE_EMBEDDING_MODEL, DTYPE: 'fp32' });
  });
  afterAll(async () => {
    await worker?.dispose();
  });
  endpointSuite('workerd (Miniflare)', () => worker.url);
});
