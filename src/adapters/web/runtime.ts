/**
 * createWebRuntimeOn: a model directory reachable by fetch -> a ready InferenceRuntime on
 * onnxruntime-web (WebGPU or wasm), in this thread. The entries (index.ts for browsers, workerd.ts
 * for Workers) bind it to the onnxruntime-web flavours they bundle.
 * @module
 */
import type * as OrtCommon from 'onnxruntime-common';
import { createHfTokenizer } from '../../model/hf-tokenizer.js';
import { checkConfig, chooseDtype, embeddingShape, generationDefaults, modelShape, onnxFileName, servedModelNames, type Dtype } from '../../model/model-config.js';
import { externalDataFiles } from '../../onnx/onnx-external-data.js';
import { OrtCausalLM, type Ort } from '../../onnx/ort-causal-lm.js';
import { OrtEmbedder } from '../../onnx/ort-embedder.js';
import { createEngine, type EngineOptions } from '../../runtime/engine.js';
import type { InferenceRuntime } from '../../runtime/types.js';
import { BINDING_ORIGIN, bindingFetch, type FetchLike, type ModelBinding } from './binding-fetch.js';
import { DEVICE_TABLE, hasWebGpuAdapter, resolveDevice, type ResolvedWebDevice, type WebDevice } from './devices.js';
import { MemoryBudget, ModelFiles } from './model-files.js';

const WASM32_MAX_BYTES = 4 * 1024 * 1024 * 1024;
import { memoryCost } from './memory-estimate.js';
import { precompiledWasmMemoryBytes, usePrecompiledWasm } from './precompiled-wasm.js';
import { WebBackend, type WebBackendStats } from './web-backend.js';
import { isGgufUrl, loadGgufSource } from './gguf-source.js';
import { loadWebLoras } from './lora-source.js';
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
  /**
   * LoRA adapters served at run time beside a `.gguf` model, each as its own model id (the CLI's
   * `--lora-modules`): `path` is a PEFT folder or a `.gguf` LoRA, resolved like `model`.
   */
  loraModules?: { name: string; path: string }[];
  /**
   * Memory budget for the models, against an estimate of what their ONNX files cost once loaded
   * (on wasm 3-5x the files: see memory-estimate.ts). Default 128 MiB in workerd (a Worker isolate's
   * memory), 4 GiB elsewhere (wasm32's address space).
   */
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
  readonly loadInfo: { url: string; dtype: Dtype; device: ResolvedWebDevice; loadMs: number; modelBytes: number; modelNames: string[]; steps: string };
  backendStats(): WebBackendStats;
}

export async function createWebRuntimeOn(loadOrt: OrtLoader, options: WebRuntimeOptions): Promise<WebRuntime> {
  const started = Date.now();
  const fetcher = options.binding ? bindingFetch(options.binding) : options.fetch;
  const baseUrl = options.baseUrl ?? (options.binding ? BINDING_ORIGIN : undefined);
  const budget = new MemoryBudget(options.maxModelBytes ?? WASM32_MAX_BYTES);
  const requested = options.device ?? 'auto';
  const device = resolveDevice(requested, requested !== 'wasm' && (await hasWebGpuAdapter()));
  const { flavour, executionProviders } = DEVICE_TABLE[device];
  const onWasm = flavour === 'wasm';
  const fetchFiles: FetchLike = fetcher ?? ((input, init) => fetch(input, init));
  if (options.loraModules?.length && !isGgufUrl(options.model)) {
    throw new Error(`loraModules need a .gguf model; ${options.model} is an ONNX model folder, whose graph cannot take run-time adapters.`);
  }
  const loras = options.loraModules?.length ? await loadWebLoras(options.loraModules, baseUrl, fetchFiles, budget) : undefined;
  const gguf = isGgufUrl(options.model)
    ? await loadGgufSource(options.model, baseUrl, fetchFiles, budget, { dtype: options.dtype, accuracy: options.ggufAccuracy, onWasm, loras })
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
  checkConfig(config, gguf ? `${gguf.url} (its config)` : `${files!.url}config.json`);
  const shape = modelShape(config, generation);
  const ort = await loadOrt(flavour);
  configureWasm(ort.env, options.wasm);

  const onnx = gguf ? { ...gguf.onnx, dtype: gguf.dtype } : await readOnnx(files!, budget, config, options.dtype, onWasm);
  const url = gguf?.url ?? files!.url;
  const model = await OrtCausalLM.create(ort, onnx.bytes, {
    name: gguf ? url : url + onnx.path,
    contextLength: shape.contextLength,
    hiddenSize: shape.hiddenSize,
    expected: shape.expected,
    sessionOptions: { executionProviders, externalData: onnx.externalData },
  });
  const embedding = options.embeddingModel ? await loadEmbedding(ort, options.embeddingModel, baseUrl, fetcher, budget, executionProviders, onWasm) : undefined;
  const backend = new WebBackend(model, embedding?.embedder);

  const modelNames = gguf && !options.modelNames?.length ? [gguf.name] : servedModelNames(options.modelNames, url);
  const adapters = options.loraModules?.map((m) => m.name) ?? [];
  const engine = createEngine({
    ...pickEngineTuning(options),
    backend,
    tokenizer: createHfTokenizer(tokenizerJson, tokenizerConfig, shape.eosTokenIds),
    modelNames,
    adapters,
    generationDefaults: generationDefaults(generation),
    embedding: embedding && { ...embedding.engine, backend: backend.embedding! },
    advice: {
      unknownModel: '(Set the modelNames option of the web runtime to serve the model under another name.)',
      noChatTemplate: 'Set the chatTemplate option of the web runtime.',
      noEmbeddingModel: 'Set the embeddingModel option of the web runtime.',
    },
  });
  const engineMetrics = engine.metrics?.bind(engine);
  return Object.assign(engine, {
    metrics: () => {
      const metrics = engineMetrics?.();
      const wasmMemoryBytes = precompiledWasmMemoryBytes();
      return metrics && wasmMemoryBytes !== undefined ? { ...metrics, wasmMemoryBytes } : metrics;
    },
    loadInfo: { url, dtype: onnx.dtype, device, loadMs: Date.now() - started, modelBytes: budget.used, modelNames, steps: model.steps },
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

/** The ONNX file of the dtype (chosen as every adapter chooses it) and the external-data files it names. */
async function readOnnx(files: ModelFiles, budget: MemoryBudget, config: Record<string, any>, requested: Dtype | undefined, onWasm: boolean): Promise<OnnxFiles> {
  let response: Response | undefined;
  const dtype = await chooseDtype(config, requested, async (candidate) => (response = await files.get(`onnx/${onnxFileName(candidate)}`, true)) !== undefined, files.url);
  const path = `onnx/${onnxFileName(dtype)}`;
  const cost = memoryCost(dtype, onWasm);
  const bytes = await budget.read(response!, `${files.name}/${path}`, cost);
  const externalData = [];
  for (const location of externalDataFiles(bytes)) {
    if (location.includes('..') || location.startsWith('/')) throw new Error(`${path} names external data outside its folder: ${location}`);
    const data = await budget.read((await files.get(`onnx/${location}`))!, `${files.name}/onnx/${location}`, cost);
    externalData.push({ path: location, data });
  }
  return { dtype, path, bytes, externalData };
}

async function loadEmbedding(
  ort: Ort, name: string, baseUrl: string | URL | undefined, fetcher: FetchLike | undefined, budget: MemoryBudget, executionProviders: string[],
  onWasm: boolean,
) {
  const files = new ModelFiles(name, baseUrl, fetcher);
  const [config, tokenizerJson, tokenizerConfig] = await Promise.all([files.json('config.json'), files.json('tokenizer.json'), files.json('tokenizer_config.json')]);
  const onnx = await readOnnx(files, budget, config, undefined, onWasm);
  const shape = embeddingShape(config);
  const embedder = await OrtEmbedder.create(ort, onnx.bytes, { executionProviders, externalData: onnx.externalData }, shape.dimensions);
  return {
    embedder,
    engine: {
      tokenizer: createHfTokenizer(tokenizerJson, tokenizerConfig, []),
      name: servedModelNames(undefined, files.url)[0],
      contextLength: shape.contextLength,
    },
  };
}

function pickEngineTuning(o: WebRuntimeOptions): EngineTuning {
  const { completionTemplate, chatTemplate, maxConcurrent, maxQueue, sessionLength, prefillChunk, cacheMaxBytes, onError } = o;
  return { completionTemplate, chatTemplate, maxConcurrent, maxQueue, sessionLength, prefillChunk, cacheMaxBytes, onError };
}
