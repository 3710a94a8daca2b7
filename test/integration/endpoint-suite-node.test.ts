/**
 * The shared endpoint suite against the real Node server (CLI, worker thread, onnxruntime-node).
 * test/workerd/endpoint-suite.test.ts runs the same suite inside workerd.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { endpointSuite, SUITE_EMBEDDING_MODEL, SUITE_MODEL } from '../helpers/endpoint-suite.js';
import { sharedModel } from '../helpers/shared-models.js';

const model = sharedModel(SUITE_MODEL);
const embedding = sharedModel(SUITE_EMBEDDING_MODEL);

describe.skipIf(!model || !embedding)('the Node server', () => {
  let server: CliServer;
  beforeAll(async () => {
    server = await startCli([model!, '--embedding-model', embedding!, '--dtype', 'fp32']);
  });
  afterAll(async () => {
    await server?.stop();
  });
  endpointSuite('Node (edgellm serve)', () => server.url);
});
