import { copyFileSync, mkdirSync } from 'node:fs';
import { basename } from 'node:path';
import { defineConfig, type Options } from 'tsup';

const external = ['onnxruntime-node', 'onnxruntime-web', '@huggingface/transformers'];

/** A `.wasm` import stays an import of the file beside the bundle (a CompiledWasm module in workerd). */
const wasmBeside: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'wasm-beside',
  setup(build) {
    build.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: `./${basename(args.path)}`, external: true }));
  },
};

const copyOrtWasm = (dir: string, files: string[]) => async () => {
  mkdirSync(dir, { recursive: true });
  for (const file of files) copyFileSync(`node_modules/onnxruntime-web/dist/${file}`, `${dir}/${file}`);
};

export default defineConfig([
  {
    // Platform-neutral library, the Node adapter and the test helpers.
    entry: {
      index: 'src/index.ts',
      node: 'src/adapters/node/index.ts',
      testing: 'src/testing/index.ts',
    },
    format: ['esm', 'cjs'],
    // One declaration build for every entry (web's too): a second one racing this one's clean loses its files.
    dts: {
      entry: { index: 'src/index.ts', node: 'src/adapters/node/index.ts', testing: 'src/testing/index.ts', web: 'src/adapters/web/index.ts',
        // edgellm/worker's types (the bundle itself is built below): EdgellmModel, the default export, EdgellmWorkerEnv.
        worker: 'src/adapters/web/worker.ts',
      },
    },
    sourcemap: true,
    clean: true,
    shims: true,
    target: 'node20',
    external,
  },
  {
    // The CLI and the inference worker: ESM only, loaded by bin/edgellm.js and by worker_threads.
    entry: {
      cli: 'src/cli/cli.ts',
      'inference-thread': 'src/adapters/node/inference-thread.ts',
      'tokenizer-thread': 'src/adapters/node/tokenizer-thread.ts',
    },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    external,
  },
  {
    // edgellm/web: browsers and bundlers (web.js, WebGPU or wasm) and workerd (web.workerd.js, wasm only).
    // onnxruntime-web stays a dependency: the user's bundler brings it in.
    entry: { web: 'src/adapters/web/index.ts', 'web.workerd': 'src/adapters/web/workerd.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'es2022',
    platform: 'neutral',
    external,
    esbuildOptions: (o) => void (o.mainFields = ['module', 'main']),
  },
  {
    // The Cloudflare Worker (wrangler.toml's main): one self-contained module and the wasm it imports.
    entry: { worker: 'src/adapters/web/worker.ts' },
    format: ['esm'],
    sourcemap: true,
    minify: true,
    target: 'es2022',
    platform: 'neutral',
    noExternal: [/.*/],
    esbuildPlugins: [wasmBeside],
    esbuildOptions: (o) => {
      o.conditions = ['workerd', 'worker', 'browser'];
      o.mainFields = ['module', 'main'];
    },
    onSuccess: copyOrtWasm('dist', ['ort-wasm-simd-threaded.wasm']),
  },
  {
    // `npm run dev:worker`: the Cloudflare Worker in workerd through Miniflare (a dev dependency, not bundled).
    entry: { 'workerd-dev': 'tools/workerd-dev/cli.ts' },
    // A dev tool: built beside dist/, not into the published package.
    outDir: 'dist-dev',
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    external: ['miniflare'],
  },
  {
    // The browser bundle: no bundler needed. Each onnxruntime-web build is a chunk loaded for its
    // device, and finds its wasm beside itself. edgellm.sw.js is for module Service Workers, where
    // import() is forbidden: it imports both builds statically (examples/browser/sw.js).
    entry: { edgellm: 'src/adapters/web/browser-bundle.ts', 'edgellm.sw': 'src/adapters/web/service-worker.ts' },
    outDir: 'dist/browser',
    format: ['esm'],
    splitting: true,
    sourcemap: true,
    minify: true,
    target: 'es2022',
    platform: 'browser',
    noExternal: [/.*/],
    onSuccess: copyOrtWasm('dist/browser', ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.asyncify.wasm']),
  },
]);
