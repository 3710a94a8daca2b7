/**
 * createWebRuntimeOn: a model directory reachable by fetch -> a ready InferenceRuntime on
 * onnxruntime-web (WebGPU or wasm), in this thread. The entries (index.ts for browsers, workerd.ts
 * for Workers) bind it to the onnxruntime-web flavours they bundle.
 * @module
 */
import type * as OrtCommon from 'onnxruntime-common';
import { createHfTokenizer } from '../../model/hf-tokenizer.js';
import { configDtype, DTYPE_PICK_ORDER, generationDefaults, modelShape, onnxFileName, type Dtype } from '../../model/model-config.js';
import { externalDataFiles } from '../../onnx/onnx-external-data.js';
import { OrtCausalLM, type Ort } from '../../onnx/ort-causal-lm.js';
import { OrtEmbedder } from '../../onnx/ort-embedder.js';
import { createEngine, type EngineOptions } from '../../runtime/engine.js';
import type { InferenceRuntime } from '../../runtime/types.js';
import { BINDING_ORIGIN, bindingFetch, type FetchLike, type ModelBinding } from './binding-fetch.js';
import { DEVICE_TABLE, hasWebGpuAdapter, resolveDevice, type ResolvedWebDevice, type WebDevice } from './devices.js';
import { DEFAULT_MAX_MODEL_BYTES, MemoryBudget, ModelFiles } from './model-files.js';
import { usePrecompiledWasm } from './precompiled-wasm.js';
import { WebBackend, type WebBackendStats } from './web-backend.js';
import { isGgufUrl, loadGgufSource } from './gguf-source.js';
import type { GgufAccuracy } from '../../onnx/gguf-import.js';

export type OrtWeb = Ort & { env: OrtCommon.Env };
/** Loads the onnxruntime-web build for a device: `onnxruntime-web/webgpu` or `onnxruntime-web/wasm`. */
export type OrtLoader = (flavour: 'webgpu' | 'wasm') => Promise<OrtWeb>;

type EngineTuning = Pick<
  EngineOptions,
  'completionTemplate' | 'chatTemplate' | 'maxConcurrent' | 'maxQueue' | 'sessionLength' | 'prefillChunk' | 'cacheMaxBytes' | 'onError'
>;

export interface WebRuntimeOptions extends EngineTuning {
  /**
   * A model directory in the transformers.js layout: a name under `baseUrl`, or a full URL. Or a
   * `.gguf` file, converted in memory at load (its weights then count twice: the file and the graph).
   */
  model: string;
  /** For a GGUF model: float32 (`exact`, default) or int8 activations for its 4-bit weights. */
  ggufAccuracy?: GgufAccuracy;
  /** What `model` is relative to; default: the page's location (in a browser). */
  baseUrl?: string | URL;
  /** Reads the model files (default: the global fetch). */
  fetch?: FetchLike;
  /** A Workers binding holding the model files under `<model>/...`: static assets, R2 or KV. */
  binding?: ModelBinding;
  /** `auto`: WebGPU when navigator.gpu has an adapter, else wasm. */
  device?: WebDevice;
  /** Default: config.json's transformers.js_config.dtype, else the first present of fp32, q8, q4, fp16. */
  dtype?: Dtype;
  /** A sentence-embedding model directory (same base and fetch) to serve /v1/embeddings from. */
  embeddingModel?: string;
  /** Names clients may use; default the model directory's name. */
  modelNames?: string[];
  /** Largest total size of the ONNX files (model, external data, embedding model); default 128 MB. */
  maxModelBytes?: number;
  wasm?: {
    /** A compiled ort-wasm-simd-threaded.wasm, where wasm cannot be compiled from bytes (workerd). */
    module?: WebAssembly.Module;
    /** Where onnxruntime-web finds its .wasm/.mjs files (its env.wasm.wasmPaths). */
    paths?: string | { wasm?: string | URL; mjs?: string | URL };
    /** wasm threads (needs cross-origin isolation in a browser); default onnxruntime-web's choice. */
    threads?: number;
  };
}

export interface WebRuntime extends InferenceRuntime {
  readonly loadInfo: { url: string; dtype: Dtype; device: ResolvedWebDevice; loadMs: number; modelBytes: number; modelNames: string[] };
  backendStats(): WebBackendStats;
}

export async function createWebRuntimeOn(loadOrt: OrtLoader, options: WebRuntimeOptions): Promise<WebRuntime> {
  const started = Date.now();
  const fetcher = options.binding ? bindingFetch(options.binding) : options.fetch;
  const baseUrl = options.baseUrl ?? (options.binding ? BINDING_ORIGIN : undefined);
  const budget = new MemoryBudget(options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES);
  const gguf = isGgufUrl(options.model)
    ? await loadGgufSource(options.model, baseUrl, fetcher ?? ((input, init) => fetch(input, init)), budget, { dtype: options.dtype, accuracy: options.ggufAccuracy })
    : undefined;
  const files = gguf ? undefined : new ModelFiles(options.model, baseUrl, fetcher);

  const [config, generation, tokenizerJson, tokenizerConfig] = gguf
    ? [gguf.config, gguf.generation, gguf.tokenizerJson, gguf.tokenizerConfig]
    : await Promise.all([
        files!.json('config.json'),
        files!.json('generation_config.json', true),
        files!.json('tokenizer.json'),
        files!.json('tokenizer_config.json'),
      ]);
  const shape = modelShape(config, generation);
  const requested = options.device ?? 'auto';
  const device = resolveDevice(requested, requested !== 'wasm' && (await hasWebGpuAdapter()));
  const { flavour, executionProviders } = DEVICE_TABLE[device];
  const ort = await loadOrt(flavour);
  configureWasm(ort.env, options.wasm);

  const onnx = gguf ? { ...gguf.onnx, dtype: gguf.dtype } : await readOnnx(files!, budget, options.dtype ?? configDtype(config));
  const url = gguf?.url ?? files!.url;
  const model = await OrtCausalLM.create(ort, onnx.bytes, {
    name: gguf ? url : url + onnx.path,
    contextLength: shape.contextLength,
    hiddenSize: shape.hiddenSize,
    sessionOptions: { executionProviders, externalData: onnx.externalData },
  });
  const embedding = options.embeddingModel ? await loadEmbedding(ort, options.embeddingModel, baseUrl, fetcher, budget, executionProviders) : undefined;
  const backend = new WebBackend(model, embedding?.embedder);

  const modelNames = options.modelNames?.length ? options.modelNames : [gguf?.name ?? lastSegment(url)];
  const engine = createEngine({
    ...pickEngineTuning(options),
    backend,
    tokenizer: createHfTokenizer(tokenizerJson, tokenizerConfig, shape.eosTokenIds),
    modelNames,
    generationDefaults: generationDefaults(generation),
    embedding: embedding && { ...embedding.engine, backend: backend.embedding! },
  });
  return Object.assign(engine, {
    loadInfo: { url, dtype: onnx.dtype, device, loadMs: Date.now() - started, modelBytes: budget.used, modelNames },
    backendStats: () => backend.stats(),
  });
}

function configureWasm(env: OrtCommon.Env, wasm: WebRuntimeOptions['wasm'] = {}): void {
  if (wasm.module) usePrecompiledWasm(env, wasm.module);
  if (wasm.paths) env.wasm.wasmPaths = wasm.paths as OrtCommon.Env.WasmPrefixOrFilePaths;
  if (wasm.threads) env.wasm.numThreads = wasm.threads;
}

interface OnnxFiles {
  dtype: Dtype;
  path: string;
  bytes: Uint8Array;
  externalData: Array<{ path: string; data: Uint8Array }>;
}

/** The ONNX file of the dtype (or the first present one) and the external-data files it names. */
async function readOnnx(files: ModelFiles, budget: MemoryBudget, dtype: Dtype | undefined): Promise<OnnxFiles> {
  const candidates = dtype ? [dtype] : DTYPE_PICK_ORDER;
  for (const candidate of candidates) {
    const path = `onnx/${onnxFileName(candidate)}`;
    const response = await files.get(path, true);
    if (!response) continue;
    const bytes = await budget.read(response, `${files.name}/${path}`);
    const externalData = [];
    for (const location of externalDataFiles(bytes)) {
      if (location.includes('..') || location.startsWith('/')) throw new Error(`${path} names external data outside its folder: ${location}`);
      const data = await budget.read((await files.get(`onnx/${location}`))!, `${files.name}/onnx/${location}`);
      externalData.push({ path: location, data });
    }
    return { dtype: candidate, path, bytes, externalData };
  }
  throw new Error(
    dtype
      ? `dtype ${dtype} needs onnx/${onnxFileName(dtype)}, which ${files.url} does not have. Pick another dtype or omit it.`
      : `No ONNX model under ${files.url}onnx/ (tried ${DTYPE_PICK_ORDER.map((d) => onnxFileName(d)).join(', ')}).`,
  );
}

async function loadEmbedding(
  ort: Ort, name: string, baseUrl: string | URL | undefined, fetcher: FetchLike | undefined, budget: MemoryBudget, executionProviders: string[],
) {
  const files = new ModelFiles(name, baseUrl, fetcher);
  const [config, tokenizerJson, tokenizerConfig] = await Promise.all([files.json('config.json'), files.json('tokenizer.json'), files.json('tokenizer_config.json')]);
  const onnx = await readOnnx(files, budget, configDtype(config));
  const shape = modelShape(config);
  const embedder = await OrtEmbedder.create(ort, onnx.bytes, { executionProviders, externalData: onnx.externalData }, shape.hiddenSize);
  return {
    embedder,
    engine: {
      tokenizer: createHfTokenizer(tokenizerJson, tokenizerConfig, []),
      name: lastSegment(files.url),
      contextLength: config.max_position_embeddings ?? 512,
    },
  };
}

const lastSegment = (url: string) => decodeURIComponent(new URL(url).pathname.replace(/\/+$/, '').split('/').pop() || url);

function pickEngineTuning(o: WebRuntimeOptions): EngineTuning {
  const { completionTemplate, chatTemplate, maxConcurrent, maxQueue, sessionLength, prefillChunk, cacheMaxBytes, onError } = o;
  return { completionTemplate, chatTemplate, maxConcurrent, maxQueue, sessionLength, prefillChunk, cacheMaxBytes, onError };
}
