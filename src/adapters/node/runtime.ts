/**
 * createNodeRuntime: a model directory (or Hub id) -> a ready InferenceRuntime, with inference in
 * a worker thread on onnxruntime-node and tokenization (the shared pure-JS tokenizer) in this thread.
 * @module
 */
import { join } from 'node:path';
import { createEngine } from '../../runtime/engine.js';
import { lookupRefusal, type PromptLookupOptions } from '../../runtime/prompt-lookup.js';
import type { ChatTemplate, CompletionTemplate } from '../../runtime/templates.js';
import type { HostAdvice, InferenceRuntime } from '../../runtime/types.js';
import { checkConfig, embeddingShape, generationDefaults, modelShape, servedModelNames } from '../../model/model-config.js';
import type { AttentionShape } from '../../onnx/onnx-attention-fusion.js';
import { assertOnnxruntimeNode, cudaProviderInstalled, deviceCandidates, deviceHint, executionProviders, type Device } from './devices.js';
import { cacheRoot, onnxFileName, pickDtype, resolveModelDir, type Dtype } from './model-files.js';
import { readJsonFile } from './json-file.js';
import { isGgufModel, resolveGgufModel } from './gguf-model.js';
import type { GgufAccuracy } from '../../onnx/gguf-import.js';
import { loadLoraFiles, type LoraFiles } from './lora-files.js';
import { loadTokenizer } from './tokenizer.js';
import type { Tokenizer } from '../../runtime/tokenizer.js';
import { WorkerBackend } from './thread-backend.js';
import type { WorkerStats } from './thread-protocol.js';

export interface NodeRuntimeOptions {
  /**
   * A model directory in the transformers.js layout, or a Hub id; or a GGUF model (a .gguf file, a
   * folder holding one, or owner/name:QUANT), converted once into the cache.
   */
  model: string;
  /** Downloads and GGUF conversions; default EDGELLM_CACHE, else ~/.cache/edgellm. */
  cacheDir?: string;
  /** For a GGUF model: float32 (`exact`, default) or int8 activations for its 4-bit weights. */
  ggufAccuracy?: GgufAccuracy;
  /**
   * A LoRA adapter (PEFT folder or GGUF LoRA file) merged exactly into a GGUF base at conversion;
   * its folder is the default tokenizer when it holds a tokenizer.json.
   */
  loraModel?: string;
  /**
   * LoRA adapters served at run time beside a GGUF base, each as its own model id (vLLM's
   * `--lora-modules name=PATH`): one base graph with every adapter's low-rank update, chosen per
   * request by `model` (and per batch row).
   */
  loraModules?: { name: string; path: string }[];
  tokenizerPath?: string;
  dtype?: Dtype;
  device?: Device;
  deviceId?: number;
  /** Names clients may use; default the directory (or Hub id) name. */
  modelNames?: string[];
  embeddingModel?: string;
  completionTemplate?: CompletionTemplate;
  chatTemplate?: ChatTemplate;
  maxConcurrent?: number;
  maxQueue?: number;
  /** Byte budget for reusable KV caches (prefix cache and idle sessions); 0 disables reuse. */
  cacheMaxBytes?: number;
  /** Largest prompt chunk prefilled per step (default 512). */
  prefillChunk?: number;
  /**
   * Prompt-lookup speculative decoding: most draft tokens a greedy request running alone verifies per
   * step (default 4; 0: off). Left off, and said in `loadInfo.promptLookup`, where drafted steps would
   * change greedy output (int8 activations).
   */
  promptLookup?: number | PromptLookupOptions;
  /** Context budget of a /generate session (lmdeploy's --session-len), default the model's context. */
  sessionLength?: number;
  threads?: number;
  /**
   * onnxruntime's idle CPU threads sleep between ops instead of spinning (onnxruntime's default):
   * about 2x faster when other processes take cores, 10-20% slower on idle ones (bench/README.md,
   * "Under a CPU hog"). Changes no output. Default false.
   */
  threadSleep?: boolean;
  /**
   * Batch-invariant int8 (slower): weight-only int8 runs in float, and a graph with int8
   * activations (the rewritten dynamic q8, q4 at accuracy_level 4) runs each sequence alone.
   */
  exactQuantized?: boolean;
  /**
   * Run each greedy decode step while the engine still handles the previous one (default on;
   * EDGELLM_LOOKAHEAD=0 turns it off). Outputs are identical either way.
   */
  lookahead?: boolean;
  /**
   * On the CPU, rewrite the model's attention into onnxruntime's GroupQueryAttention kernel at
   * load, when the model qualifies and the rewrite's logits match the original's (default on;
   * EDGELLM_FUSE_ATTENTION=0 turns it off). See ARCHITECTURE.md.
   */
  fuseAttention?: boolean;
  /**
   * On the CPU, rewrite the Hub's dynamic q8 matmuls into 8-bit MatMulNBits with activations
   * quantized per row, so that a request's greedy output does not depend on its batch or on a
   * prefix-cache hit (default on; EDGELLM_INT8_MATMUL=0 turns it off: such a graph then runs
   * each sequence alone and reuses no other request's prefix).
   */
  rewriteInt8?: boolean;
  log?: (line: string) => void;
  onError?: (error: unknown) => void;
  /**
   * The inference thread died after loading. In-flight and later requests get 503 and the
   * runtime's status is `failed`; `edgellm serve` logs it and exits 1 for its supervisor.
   */
  onFatal?: (error: Error) => void;
  /** Advice for errors this host's configuration fixes; default: the options above by name. */
  advice?: HostAdvice;
}

const OPTION_ADVICE: HostAdvice = {
  unknownModel: '(Set the modelNames option to serve the model under another name.)',
  noChatTemplate: 'Set the chatTemplate option.',
  noEmbeddingModel: 'Set the embeddingModel option.',
};

export interface NodeRuntime extends InferenceRuntime {
  readonly loadInfo: {
    dir: string;
    dtype: Dtype;
    device: string;
    loadMs: number;
    modelNames: string[];
    /** Model ids of the LoRA adapters served at run time (`loraModules`), beside `modelNames`. */
    adapters: string[];
    attention: string;
    steps: string;
    /** Prompt-lookup speculative decoding: on (how many draft tokens), or off and why; empty when not asked for. */
    promptLookup: string;
    /** How dynamic int8 matmuls run (8-bit MatMulNBits, or as exported and why); empty when none. */
    matmul: string;
    /** How the load checks (rewrites, probes) ran: at load with the verdict stored, or from the cache. */
    checks: string;
    /** For a GGUF model: its file, and whether this start converted it (and how long finding/converting took). */
    gguf?: { file: string; converted: boolean; ms: number };
  };
  /** The inference worker's counters: live sequences, batched decode calls and rows, prefills. */
  backendStats(): Promise<WorkerStats>;
}

const readJson = (path: string) => readJsonFile(path, { optional: true });

/**
 * A model directory (transformers.js layout) or Hub id, loaded on onnxruntime-node in an inference
 * thread: the runtime createApp serves. Needs the optional peer `onnxruntime-node`.
 * @example
 * import { createApp } from 'edgellm';
 * import { createNodeRuntime, serve } from 'edgellm/node';
 * const runtime = await createNodeRuntime({ model: 'HuggingFaceTB/SmolLM2-135M-Instruct', dtype: 'q8', maxConcurrent: 4 });
 * console.log(runtime.loadInfo);   // { dir, dtype, device, loadMs, modelNames, attention }
 * await serve(createApp({ runtime }), { port: 23333 });
 */
export async function createNodeRuntime(options: NodeRuntimeOptions): Promise<NodeRuntime> {
  const started = Date.now();
  assertOnnxruntimeNode();
  const log = options.log ?? ((line: string) => console.error(line));
  const isGguf = isGgufModel(options.model);
  if (options.loraModel && !isGguf) {
    throw new Error(`--lora-model needs a GGUF base model (a .gguf file, a folder holding one, or owner/name:QUANT); ${options.model} is an ONNX model folder, whose weights cannot be merged here: merge the adapter before exporting to ONNX.`);
  }
  if (options.loraModules?.length && !isGguf) {
    throw new Error(`--lora-modules needs a GGUF base model (a .gguf file, a folder holding one, or owner/name:QUANT); ${options.model} is an ONNX model folder, whose graph cannot take run-time adapters here.`);
  }
  const lora = options.loraModel ? loadLoraFiles(options.loraModel) : undefined;
  const loraModules = options.loraModules?.map(({ name, path }) => ({ name, ...loadLoraFiles(path, `--lora-modules ${name}=${path}`) }));
  const gguf = isGguf ? await resolveGguf(options, log, lora, loraModules) : undefined;
  const { dir, hubId } = gguf ? { dir: gguf.dir, hubId: undefined } : await resolveModelDir(options.model, { dtype: options.dtype, log, cacheDir: options.cacheDir });
  const dtype = gguf?.dtype ?? pickDtype(dir, options.dtype);
  const generation = readJson(join(dir, 'generation_config.json'));
  const config = readJson(join(dir, 'config.json'));
  checkConfig(config, join(dir, 'config.json'));
  const shape = modelShape(config, generation);
  const embedding = options.embeddingModel ? await resolveModelDir(options.embeddingModel, { log }) : undefined;
  const embeddingDtype = embedding ? pickDtype(embedding.dir) : undefined;
  const embeddingConfig = embeddingShape(embedding ? readJson(join(embedding.dir, 'config.json')) : {});

  // Names first: a clash between the base and an adapter fails the start before any thread starts.
  const modelNames = gguf && !options.modelNames?.length ? [gguf.name] : servedModelNames(options.modelNames, dir, hubId);
  const adapterNames = loraModules?.map((m) => m.name) ?? [];
  const clash = adapterNames.find((name) => modelNames.includes(name));
  if (clash !== undefined) throw new Error(`--lora-modules ${clash}=...: "${clash}" is already the base model's name; give the adapter another one.`);
  // Built on this thread while the inference worker creates its session (a 262k-token vocabulary
  // takes about a second); a broken tokenizer still fails the start, and stops the worker.
  let tokenizers: Promise<[Tokenizer, Tokenizer | undefined]> | undefined;
  const loadTokenizers = () =>
    (tokenizers ??= (async () => {
      const main = await loadTokenizer(options.tokenizerPath ?? lora?.tokenizerDir ?? dir, shape.eosTokenIds);
      return [main, embedding ? await loadTokenizer(embedding.dir, []) : undefined];
    })());

  // What the worker on a device rewrites the attention with, or why it keeps the exported graph.
  const fuse = options.fuseAttention ?? process.env.EDGELLM_FUSE_ATTENTION !== '0';
  const attentionOn = (candidate: Exclude<Device, 'auto'>): AttentionShape | string => {
    if (!fuse) return 'EDGELLM_FUSE_ATTENTION=0';
    if (typeof shape.attention !== 'string' && candidate !== 'cpu') return `the GroupQueryAttention rewrite is for the CPU; device ${candidate}`;
    return shape.attention;
  };
  const rewriteInt8 = options.rewriteInt8 ?? process.env.EDGELLM_INT8_MATMUL !== '0';
  let attention = '';
  let matmul = '';
  let backend: WorkerBackend | undefined;
  let device = '';
  let lastFailure = '';
  const requested = options.device ?? 'auto';
  for (const candidate of deviceCandidates(requested)) {
    if (candidate === 'cuda' && requested === 'auto' && !cudaProviderInstalled()) {
      log('edgellm: the CUDA provider of onnxruntime-node is not installed; using the CPU.');
      continue;
    }
    const plan = attentionOn(candidate);
    try {
      const starting = WorkerBackend.start(workerUrl(), {
        model: {
          path: join(dir, 'onnx', onnxFileName(dtype)),
          contextLength: shape.contextLength,
          hiddenSize: shape.hiddenSize,
          expected: shape.expected,
          attention: typeof plan === 'string' ? undefined : plan,
          int8MatMul: rewriteInt8 && candidate === 'cpu',
          cacheRoot: cacheRoot(options.cacheDir),
        },
        embedding: embedding && {
          path: join(embedding.dir, 'onnx', onnxFileName(embeddingDtype!)),
          dimensions: embeddingConfig.dimensions,
        },
        executionProviders: executionProviders(candidate, options.deviceId),
        threads: options.threads,
        threadSleep: options.threadSleep,
        exactQuantized: options.exactQuantized,
        lookahead: options.lookahead ?? process.env.EDGELLM_LOOKAHEAD !== '0',
      }, (error) => options.onFatal?.(error));
      loadTokenizers().catch(() => {}); // awaited below
      backend = await starting;
      device = candidate === 'cuda' ? `cuda:${options.deviceId ?? 0}` : candidate;
      attention = typeof plan === 'string' ? `exported graph (${plan})` : backend.attention;
      matmul = backend.matmul;
      break;
    } catch (error) {
      const message = `could not start on ${candidate}: ${(error as Error).message.split('\n')[0]}`;
      lastFailure = message;
      if (requested !== 'auto') throw new Error(`${message}\n${deviceHint(candidate)}`);
      log(`edgellm: ${message}; falling back to the CPU.`);
    }
  }
  if (!backend) throw new Error(`No device could load the model (${lastFailure || 'no device to try'}).`);
  let tokenizer: Tokenizer;
  let embeddingTokenizer: Tokenizer | undefined;
  try {
    [tokenizer, embeddingTokenizer] = await loadTokenizers();
  } catch (error) {
    await backend.dispose();
    throw error;
  }

  // A GGUF converted exactly computes in float but for its tied LM head (see lookupRefusal).
  const lookupOff = lookupRefusal(backend.info, gguf !== undefined && options.ggufAccuracy !== 'int8');
  const engine = createEngine({
    backend,
    tokenizer,
    modelNames,
    adapters: adapterNames,
    completionTemplate: options.completionTemplate,
    chatTemplate: options.chatTemplate,
    generationDefaults: generationDefaults(generation),
    maxConcurrent: options.maxConcurrent,
    maxQueue: options.maxQueue,
    cacheMaxBytes: options.cacheMaxBytes,
    prefillChunk: options.prefillChunk,
    promptLookup: lookupOff ? 0 : (options.promptLookup ?? DEFAULT_PROMPT_LOOKUP),
    sessionLength: options.sessionLength,
    embedding:
      embedding && backend.embedding
        ? {
            backend: backend.embedding,
            tokenizer: embeddingTokenizer!,
            name: servedModelNames(undefined, embedding.dir, embedding.hubId)[0],
            contextLength: embeddingConfig.contextLength,
          }
        : undefined,
    onError: options.onError,
    advice: options.advice ?? OPTION_ADVICE,
  });
  const worker = backend;
  return Object.assign(engine, {
    loadInfo: {
      dir, dtype, device, loadMs: Date.now() - started, modelNames, adapters: adapterNames, attention, steps: backend.steps, matmul, checks: backend.checks,
      promptLookup: lookupNote(options.promptLookup ?? DEFAULT_PROMPT_LOOKUP, lookupOff),
      ...(gguf ? { gguf: { file: gguf.file, converted: gguf.converted, ms: gguf.ms } } : {}),
    },
    backendStats: () => worker.stats(),
  });
}

/**
 * Draft tokens per step by default. On this CPU a drafted step costs about the same for 2 to 5
 * positions (4-bit weights, float activations), and the greedy output of SmolLM2's exact GGUF was
 * the same token for token with it (bench/README.md, "Prompt lookup").
 */
const DEFAULT_PROMPT_LOOKUP = 4;

/** What the startup log says of --prompt-lookup: on, or off and why (`refusal`); empty when it was not asked for. */
function lookupNote(lookup: NodeRuntimeOptions['promptLookup'], refusal: string | undefined): string {
  const draft = typeof lookup === 'number' ? lookup : (lookup?.maxDraft ?? 0);
  if (draft <= 0) return '';
  return refusal ? `off: ${refusal}` : `up to ${draft} draft tokens per step, for greedy requests running alone`;
}

/** A GGUF model: converted into the cache on the first start, found there on later ones. */
async function resolveGguf(options: NodeRuntimeOptions, log: (line: string) => void, lora?: LoraFiles, loraModules?: (LoraFiles & { name: string })[]) {
  if (options.dtype && options.dtype !== 'fp32' && options.dtype !== 'q4') {
    throw new Error(`--dtype ${options.dtype} does not apply to a GGUF model: leave it out (the file's own quantization, mapped exactly) or use fp32 (every weight dequantized).`);
  }
  const gguf = await resolveGgufModel(options.model, options.dtype === 'fp32' ? 'fp32' : 'q4', { log, accuracy: options.ggufAccuracy, cacheDir: options.cacheDir, lora, loraModules });
  log(`edgellm: GGUF ${gguf.file}: ${gguf.converted ? 'converted' : 'conversion found in the cache'} in ${(gguf.ms / 1000).toFixed(1)} s (${gguf.dir})`);
  return gguf;
}

/** The inference thread is a separate bundle (dist/inference-thread.js); from the sources (tests) use the built one. */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.includes('/src/adapters/node/') ? new URL('../../../dist/inference-thread.js', here) : new URL('./inference-thread.js', here);
}

