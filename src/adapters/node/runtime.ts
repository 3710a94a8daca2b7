/**
 * createNodeRuntime: a model directory (or Hub id) -> a ready InferenceRuntime, with inference in
 * a worker thread on onnxruntime-node and tokenization (the shared pure-JS tokenizer) in this thread.
 * @module
 */
import { readFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createEngine } from '../../runtime/engine.js';
import type { ChatTemplate, CompletionTemplate } from '../../runtime/templates.js';
import type { InferenceRuntime } from '../../runtime/types.js';
import { generationDefaults, modelShape } from '../../model/model-config.js';
import type { AttentionShape } from '../../onnx/onnx-attention-fusion.js';
import { cudaProviderInstalled, deviceCandidates, deviceHint, executionProviders, type Device } from './devices.js';
import { onnxFileName, pickDtype, resolveModelDir, type Dtype } from './model-files.js';
import { isGgufModel, resolveGgufModel } from './gguf-model.js';
import type { GgufAccuracy } from '../../onnx/gguf-import.js';
import { loadLoraFiles, type LoraFiles } from './lora-files.js';
import { loadTokenizer } from './tokenizer.js';
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
  /** Context budget of a /generate session (lmdeploy's --session-len), default the model's context. */
  sessionLength?: number;
  threads?: number;
  /** Batch-invariant weight-only int8: do not let onnxruntime fuse it into dynamic int8 (slower). */
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
  log?: (line: string) => void;
  onError?: (error: unknown) => void;
}

export interface NodeRuntime extends InferenceRuntime {
  readonly loadInfo: {
    dir: string;
    dtype: Dtype;
    device: string;
    loadMs: number;
    modelNames: string[];
    attention: string;
    /** For a GGUF model: its file, and whether this start converted it (and how long finding/converting took). */
    gguf?: { file: string; converted: boolean; ms: number };
  };
  /** The inference worker's counters: live sequences, batched decode calls and rows, prefills. */
  backendStats(): Promise<WorkerStats>;
}

const readJson = (path: string) => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {});

export async function createNodeRuntime(options: NodeRuntimeOptions): Promise<NodeRuntime> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => console.error(line));
  const isGguf = isGgufModel(options.model);
  if (options.loraModel && !isGguf) {
    throw new Error(`--lora-model needs a GGUF base model (a .gguf file, a folder holding one, or owner/name:QUANT); ${options.model} is an ONNX model folder, whose weights cannot be merged here: merge the adapter before exporting to ONNX.`);
  }
  const lora = options.loraModel ? loadLoraFiles(options.loraModel) : undefined;
  const gguf = isGguf ? await resolveGguf(options, log, lora) : undefined;
  const { dir } = gguf ?? (await resolveModelDir(options.model, { dtype: options.dtype, log, cacheDir: options.cacheDir }));
  const dtype = gguf?.dtype ?? pickDtype(dir, options.dtype);
  const generation = readJson(join(dir, 'generation_config.json'));
  const shape = modelShape(readJson(join(dir, 'config.json')), generation);
  const embedding = options.embeddingModel ? await resolveModelDir(options.embeddingModel, { log }) : undefined;
  const embeddingDtype = embedding ? pickDtype(embedding.dir) : undefined;
  const embeddingConfig = embedding ? readJson(join(embedding.dir, 'config.json')) : {};

  // What the worker on a device rewrites the attention with, or why it keeps the exported graph.
  const fuse = options.fuseAttention ?? process.env.EDGELLM_FUSE_ATTENTION !== '0';
  const attentionOn = (candidate: Exclude<Device, 'auto'>): AttentionShape | string => {
    if (!fuse) return 'EDGELLM_FUSE_ATTENTION=0';
    if (typeof shape.attention !== 'string' && candidate !== 'cpu') return `the GroupQueryAttention rewrite is for the CPU; device ${candidate}`;
    return shape.attention;
  };
  let attention = '';
  let backend: WorkerBackend | undefined;
  let device = '';
  const requested = options.device ?? 'auto';
  for (const candidate of deviceCandidates(requested)) {
    if (candidate === 'cuda' && requested === 'auto' && !cudaProviderInstalled()) {
      log('edgellm: the CUDA provider of onnxruntime-node is not installed; using the CPU.');
      continue;
    }
    const plan = attentionOn(candidate);
    try {
      backend = await WorkerBackend.start(workerUrl(), {
        model: {
          path: join(dir, 'onnx', onnxFileName(dtype)),
          contextLength: shape.contextLength,
          hiddenSize: shape.hiddenSize,
          attention: typeof plan === 'string' ? undefined : plan,
        },
        embedding: embedding && {
          path: join(embedding.dir, 'onnx', onnxFileName(embeddingDtype!)),
          dimensions: embeddingConfig.hidden_size ?? 0,
        },
        executionProviders: executionProviders(candidate, options.deviceId),
        threads: options.threads,
        exactQuantized: options.exactQuantized,
        lookahead: options.lookahead ?? process.env.EDGELLM_LOOKAHEAD !== '0',
      });
      device = candidate === 'cuda' ? `cuda:${options.deviceId ?? 0}` : candidate;
      attention = typeof plan === 'string' ? `exported graph (${plan})` : backend.attention;
      break;
    } catch (error) {
      const message = `could not start on ${candidate}: ${(error as Error).message.split('\n')[0]}`;
      if (requested !== 'auto') throw new Error(`${message}\n${deviceHint(candidate)}`);
      log(`edgellm: ${message}; falling back to the CPU.`);
    }
  }
  if (!backend) throw new Error('No device could load the model.');

  const tokenizer = await loadTokenizer(options.tokenizerPath ?? lora?.tokenizerDir ?? dir, shape.eosTokenIds);
  const modelNames = options.modelNames?.length ? options.modelNames : [gguf?.name ?? (basename(dir) === 'main' ? options.model : basename(dir))];
  const engine = createEngine({
    backend,
    tokenizer,
    modelNames,
    completionTemplate: options.completionTemplate,
    chatTemplate: options.chatTemplate,
    generationDefaults: generationDefaults(generation),
    maxConcurrent: options.maxConcurrent,
    maxQueue: options.maxQueue,
    cacheMaxBytes: options.cacheMaxBytes,
    prefillChunk: options.prefillChunk,
    sessionLength: options.sessionLength,
    embedding:
      embedding && backend.embedding
        ? {
            backend: backend.embedding,
            tokenizer: await loadTokenizer(embedding.dir, []),
            name: basename(embedding.dir) === 'main' ? options.embeddingModel! : basename(embedding.dir),
            contextLength: embeddingConfig.max_position_embeddings ?? 512,
          }
        : undefined,
    onError: options.onError,
  });
  const worker = backend;
  return Object.assign(engine, {
    loadInfo: {
      dir, dtype, device, loadMs: Date.now() - started, modelNames, attention,
      ...(gguf ? { gguf: { file: gguf.file, converted: gguf.converted, ms: gguf.ms } } : {}),
    },
    backendStats: () => worker.stats(),
  });
}

/** A GGUF model: converted into the cache on the first start, found there on later ones. */
async function resolveGguf(options: NodeRuntimeOptions, log: (line: string) => void, lora?: LoraFiles) {
  if (options.dtype && options.dtype !== 'fp32' && options.dtype !== 'q4') {
    throw new Error(`--dtype ${options.dtype} does not apply to a GGUF model: leave it out (the file's own quantization, mapped exactly) or use fp32 (every weight dequantized).`);
  }
  const gguf = await resolveGgufModel(options.model, options.dtype === 'fp32' ? 'fp32' : 'q4', { log, accuracy: options.ggufAccuracy, cacheDir: options.cacheDir, lora });
  log(`edgellm: GGUF ${gguf.file}: ${gguf.converted ? 'converted' : 'conversion found in the cache'} in ${(gguf.ms / 1000).toFixed(1)} s (${gguf.dir})`);
  return gguf;
}

/** The inference thread is a separate bundle (dist/inference-thread.js); from the sources (tests) use the built one. */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.includes('/src/adapters/node/') ? new URL('../../../dist/inference-thread.js', here) : new URL('./inference-thread.js', here);
}

