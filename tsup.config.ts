import { defineConfig } from 'tsup';

const external = ['onnxruntime-node', 'onnxruntime-web', '@huggingface/transformers'];

export default defineConfig([
  {
    // Platform-neutral library, the Node adapter and the test helpers.
    entry: {
      index: 'src/index.ts',
      node: 'src/adapters/node/index.ts',
      testing: 'src/testing/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    shims: true,
    target: 'node20',
    external,
  },
  {
    // The CLI and the inference worker: ESM only, loaded by bin/edgellm.js and by worker_threads.
    entry: {
      cli: 'src/adapters/node/cli.ts',
      'ort-worker': 'src/adapters/node/ort-worker.ts',
    },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    external,
  },
]);
