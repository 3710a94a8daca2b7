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
import { lookupRefusal } from '../../runtime/prompt-lookup.js';
import type { InferenceRuntime } from '../../runtime/types.js';
import { BINDING_ORIGIN, bindingFetch, type FetchLike, type ModelBinding } from './binding-fetch.js';
import { chooseDevice, DEVICE_TABLE, probeWebGpu, type ResolvedWebDevice, type WebDevice } from './devices.js';
import { cachingFetch, openFileStore, type FileCacheOptions, type FileStore } from './file-cache.js';
import { letProgressOut, safeListener, type ProgressListener } from './load-progress.js';
import { MemoryBudget, ModelFiles } from './model-files.js';
import { chooseWasmThreads, threadHost } from './wasm-threads.js';
import { readWasm, startWasm } from './wasm-start.js';
import { EDGELLM_VERSION } from '../../handlers/docs/openapi.js';

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
  'completionTemplate' | 'chatTemplate' | 'maxConcurrent' | 'maxQueue' | 'sessionLength' | 'prefillChunk' | 'cacheMaxBytes' | 'onError' | 'promptLookup'
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
  /**
   * Keep the model files and onnxruntime-web's wasm in the Cache API (or the origin private file
   * system where it is absent), so a reload or a Service Worker restart reads them from there;
   * `false` turns it off. Default on, except with a Workers binding and in workerd.
   */
  cache?: boolean | FileCacheOptions;
  /** Called with each step of the load: downloads (bytes of each file), device, threads, wasm start, GGUF conversion, session. */
  onProgress?: ProgressListener;
  wasm?: {
    /** A compiled ort-wasm-simd-threaded.wasm, where wasm cannot be compiled from bytes (workerd). */
    module?: WebAssembly.Module;
    /** Where onnxruntime-web finds its .wasm/.mjs files (its env.wasm.wasmPaths). */
    paths?: string | { wasm?: string | URL; mjs?: string | URL };
    /**
     * wasm threads. Default: half the cores, at most 4, in a cross-origin isolated page or dedicated
     * Worker; otherwise 1 (a thread more than the host allows falls back to 1, saying why).
     */
    threads?: number;
  };
}

export interface WebRuntime extends InferenceRuntime {
  readonly loadInfo: {
    url: string; dtype: Dtype; device: ResolvedWebDevice; loadMs: number; modelBytes: number; modelNames: string[]; steps: string;
    /** Why this device (e.g. a software WebGPU adapter skipped). */
    deviceReason: string;
    /** onnxruntime-web's wasm threads. */
    threads: number;
    /** The file cache's name (`edgellm@0.1.0`), when files are cached. */
    cache?: string;
  };
  backendStats(): WebBackendStats;
}

/** What the entry knows about where it runs: the folder its onnxruntime-web wasm files are in (the browser bundle's own). */
export interface WebPlatform {
  wasmBase?: string | URL;
}

const isWorkerd = () => (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers';

export async function createWebRuntimeOn(loadOrt: OrtLoader, options: WebRuntimeOptions, platform: WebPlatform = {}): Promise<WebRuntime> {
  const started = Date.now();
  const progress = safeListener(options.onProgress);
  const cacheOptions = options.cache === false ? undefined : options.cache === true || options.cache === undefined ? {} : options.cache;
  let store: FileStore | undefined;
  if (cacheOptions && !options.binding && !options.wasm?.module && !isWorkerd()) {
    const opened = await openFileStore(EDGELLM_VERSION, cacheOptions);
    store = opened.store;
    progress({ stage: 'cache', message: opened.message });
  }
  const networkFetch: FetchLike = options.binding ? bindingFetch(options.binding) : (options.fetch ?? ((input, init) => fetch(input, init)));
  const fetcher = cachingFetch(networkFetch, store, progress, { revalidate: cacheOptions?.revalidate });
  const baseUrl = options.baseUrl ?? (options.binding ? BINDING_ORIGIN : undefined);
  const budget = new MemoryBudget(options.maxModelBytes ?? WASM32_MAX_BYTES);
  const requested = options.device ?? 'auto';
  const gpu = requested === 'wasm' ? { adapter: false, software: false, reason: '' } : await probeWebGpu();
  const { device, reason: deviceReason } = chooseDevice(requested, gpu);
  progress({ stage: 'device', device, message: `Device: ${device} (${deviceReason})` });
  const { flavour, executionProviders, wasmFile } = DEVICE_TABLE[device];
  const onWasm = flavour === 'wasm';
  // onnxruntime-web and its wasm binary load while the model files download (awaited below).
  const ortLoading = loadOrt(flavour);
  ortLoading.catch(() => {});
  const wasmUrl = options.wasm?.module ? undefined : wasmUrlOf(options.wasm?.paths, platform.wasmBase, wasmFile);
  if (store && !wasmUrl && !options.wasm?.module) progress({ stage: 'cache', message: "Not caching onnxruntime-web's wasm: its URL is unknown here (set wasm.paths)" });
  const wasmReading =
    store && wasmUrl
      ? ortLoading.then((ort) =>
          ort.env.wasm.wasmBinary ? undefined : readWasm(wasmUrl, cachingFetch((input, init) => fetch(input, init), store, progress, { revalidate: cacheOptions?.revalidate })),
        )
      : undefined;
  wasmReading?.catch(() => {});
  if (options.loraModules?.length && !isGgufUrl(options.model)) {
    throw new Error(`loraModules need a .gguf model; ${options.model} is an ONNX model folder, whose graph cannot take run-time adapters.`);
  }
  const loras = options.loraModules?.length ? await loadWebLoras(options.loraModules, baseUrl, fetcher, budget) : undefined;
  const gguf = isGgufUrl(options.model)
    ? await loadGgufSource(options.model, baseUrl, fetcher, budget, { dtype: options.dtype, accuracy: options.ggufAccuracy, onWasm, onProgress: progress, loras })
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
  const ort = await ortLoading;
  const threads = configureWasm(ort.env, options.wasm, progress);
  await startWasm(ort, { executionProviders, wasmBinary: await wasmReading, onProgress: progress });

  const onnx = gguf ? { ...gguf.onnx, dtype: gguf.dtype } : await readOnnx(files!, budget, config, options.dtype, onWasm);
  const url = gguf?.url ?? files!.url;
  const sessionStarted = Date.now();
  progress({ stage: 'session', done: false, message: 'Creating the onnxruntime session' });
  if (options.onProgress) await letProgressOut();
  const model = await OrtCausalLM.create(ort, onnx.bytes, {
    name: gguf ? url : url + onnx.path,
    contextLength: shape.contextLength,
    hiddenSize: shape.hiddenSize,
    expected: shape.expected,
    sessionOptions: { executionProviders, externalData: onnx.externalData },
  });
  const embedding = options.embeddingModel ? await loadEmbedding(ort, options.embeddingModel, baseUrl, fetcher, budget, executionProviders, onWasm) : undefined;
  const sessionMs = Date.now() - sessionStarted;
  progress({ stage: 'session', done: true, ms: sessionMs, message: `Created the onnxruntime session in ${(sessionMs / 1000).toFixed(1)} s` });
  const backend = new WebBackend(model, embedding?.embedder);

  const modelNames = gguf && !options.modelNames?.length ? [gguf.name] : servedModelNames(options.modelNames, url);
  const adapters = options.loraModules?.map((m) => m.name) ?? [];
  // As on Node: no drafts where they would change greedy output; a GGUF converted exactly computes in float but for its LM head.
  const lookupOff = lookupRefusal(backend.info, gguf !== undefined && options.ggufAccuracy !== 'int8');
  const engine = createEngine({
    ...pickEngineTuning(options),
    ...(lookupOff && { promptLookup: 0 }),
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
  const loadMs = Date.now() - started;
  progress({ stage: 'ready', ms: loadMs, message: `Loaded ${modelNames[0]} in ${(loadMs / 1000).toFixed(1)} s` });
  return Object.assign(engine, {
    metrics: () => {
      const metrics = engineMetrics?.();
      const wasmMemoryBytes = precompiledWasmMemoryBytes();
      return metrics && wasmMemoryBytes !== undefined ? { ...metrics, wasmMemoryBytes } : metrics;
    },
    loadInfo: {
      url, dtype: onnx.dtype, device, loadMs, modelBytes: budget.used, modelNames, steps: model.steps, deviceReason, threads, cache: store?.name,
      ...(lookupOff && options.promptLookup ? { promptLookup: `off: ${lookupOff}` } : {}),
    },
    backendStats: () => backend.stats(),
  });
}

/** Sets onnxruntime-web's wasm flags; returns the threads chosen. */
function configureWasm(env: OrtCommon.Env, wasm: WebRuntimeOptions['wasm'] = {}, progress: ProgressListener): number {
  if (wasm.paths) env.wasm.wasmPaths = wasm.paths as OrtCommon.Env.WasmPrefixOrFilePaths;
  if (wasm.module) {
    usePrecompiledWasm(env, wasm.module); // one thread: a compiled module is not shared with pthreads
    progress({ stage: 'threads', threads: 1, message: 'wasm on 1 thread (a precompiled wasm module)' });
    return 1;
  }
  const { threads, message } = chooseWasmThreads(wasm.threads, threadHost());
  env.wasm.numThreads = threads;
  progress({ stage: 'threads', threads, message });
  return threads;
}

/** Where the wasm binary of this build is: `wasm.paths`, else beside the browser bundle; undefined when unknown (a user's bundler). */
function wasmUrlOf(paths: NonNullable<WebRuntimeOptions['wasm']>['paths'], base: string | URL | undefined, file: string): string | undefined {
  const locate = (href: string | URL) => new URL(href, (globalThis as { location?: { href: string } }).location?.href).href;
  if (typeof paths === 'string') return locate(paths + file);
  if (paths?.wasm) return locate(paths.wasm);
  if (paths) return undefined;
  return base ? new URL(file, base).href : undefined;
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
  const { completionTemplate, chatTemplate, maxConcurrent, maxQueue, sessionLength, prefillChunk, cacheMaxBytes, onError, promptLookup } = o;
  return { completionTemplate, chatTemplate, maxConcurrent, maxQueue, sessionLength, prefillChunk, cacheMaxBytes, onError, promptLookup };
}
