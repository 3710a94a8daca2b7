/**
 * onnxruntime-node loading for the inference worker: files from disk, external data next to the
 * model, CPU threads. The model logic itself is shared with the web adapter (src/internal).
 * @module
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { GraphExpectations } from '../../model/model-config.js';
import type { AttentionShape } from '../../onnx/onnx-attention-fusion.js';
import { OrtCausalLM } from '../../onnx/ort-causal-lm.js';
import { OrtEmbedder } from '../../onnx/ort-embedder.js';
import { loadCheckDir, optimizedGraphName, pruneLoadChecks, readLoadChecks, storeLoadChecks } from './load-checks.js';

export interface OrtModelOptions {
  path: string;
  executionProviders: ort.InferenceSession.ExecutionProviderConfig[];
  threads?: number;
  /** onnxruntime's idle threads sleep between ops instead of spinning (its default): see `threadEntries`. */
  threadSleep?: boolean;
  /**
   * Batch-invariant int8: weight-only int8 (DequantizeLinear) is not fused into int8 compute, and
   * a graph that computes with int8 activations runs each sequence alone (OrtCausalLM.exactBatches).
   */
  exactQuantized?: boolean;
  /** Start each greedy decode step before the engine asks for it (see OrtCausalLM). */
  lookahead?: boolean;
  /** KV in place (see OrtCausalLMOptions.kvInPlace); default on, off with EDGELLM_KV_IN_PLACE=0. */
  kvInPlace?: boolean;
  contextLength: number;
  hiddenSize: number;
  expected?: GraphExpectations;
  attention?: AttentionShape;
  /** Rewrite dynamic int8 matmuls into 8-bit MatMulNBits (see OrtCausalLM). */
  int8MatMul?: boolean;
  /**
   * The cache root (EDGELLM_CACHE): the load checks' verdict is stored under it and a later start
   * with the same key restores it (see load-checks.ts). Absent: checks run at every start.
   */
  cacheRoot?: string;
}

/**
 * The session config entries (`extra.session`) for onnxruntime's thread pools. By default none:
 * onnxruntime's threads spin, busy-waiting for the next op's work after finishing their share of one,
 * which is fastest on cores nothing else wants. With `sleep` they sleep at once instead: the decoder
 * runs ~500 small parallel ops per token, and when another process holds a core, a spinning thread
 * takes the CPU time the thread still working needs (a decode step took 1.5-4x as long), while on idle
 * cores sleeping costs 10-20% (bench/README.md, "Under a CPU hog"; ARCHITECTURE.md). Neither changes
 * a result, so the load-check verdicts do not depend on it.
 */
export function threadEntries(sleep = false): Record<string, string> {
  return sleep ? { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' } : {};
}

/** Loads the model; any failure (a missing, truncated or foreign file) names the file. */
export async function loadCausalLM(options: OrtModelOptions): Promise<OrtCausalLM> {
  try {
    return await createCausalLM(options);
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(message.includes(options.path) ? message : `cannot load ${options.path}: ${message}`);
  }
}

async function createCausalLM(options: OrtModelOptions): Promise<OrtCausalLM> {
  // Read only where the checks run: a restored verdict loads its own stored graph instead.
  const bytes = async () => new Uint8Array(await readFile(options.path));
  const lmOptions = {
    name: options.path,
    contextLength: options.contextLength,
    hiddenSize: options.hiddenSize,
    expected: options.expected,
    lookahead: options.lookahead,
    attention: options.attention,
    int8MatMul: options.int8MatMul,
    exactBatches: options.exactQuantized,
    // onnxruntime-node writes a pre-allocated output into the caller's memory: KV in place (off for A/B runs).
    kvInPlace: (options.kvInPlace ?? true) && process.env.EDGELLM_KV_IN_PLACE !== '0',
    sessionOptions: {
      executionProviders: options.executionProviders,
      ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
      // onnxruntime's CPU arena keeps every block it ever grew to (a prefill's logits: 100 MB at 512
      // tokens of a 49k vocabulary) for the process's lifetime; plain malloc returns them. Same speed
      // measured (bench/README.md, "Resident memory"); EDGELLM_CPU_ARENA=1 turns the arena back on.
      enableCpuMemArena: process.env.EDGELLM_CPU_ARENA === '1',
      // onnxruntime's per-op profile (bench/profile.mjs reads it): one JSON file per session, written at dispose.
      ...(process.env.EDGELLM_ORT_PROFILE ? { enableProfiling: true, profileFilePrefix: process.env.EDGELLM_ORT_PROFILE } : {}),
      // A model created from bytes looks for external data next to the process; point it at the model's folder.
      extra: {
        session: {
          model_external_initializers_file_folder_path: dirname(options.path),
          // onnxruntime fuses DequantizeLinear + MatMul into an int8 kernel that quantizes activations:
          // faster, but it amplifies the tiny float differences that left padding causes, so a
          // request's tokens can depend on its batch. Off: exact greedy output, about half the speed.
          ...(options.exactQuantized ? { disable_quant_qdq: '1' } : {}),
          ...threadEntries(options.threadSleep),
        },
      },
    },
  };
  const checksDir = options.cacheRoot && process.env.EDGELLM_LOAD_CHECKS_CACHE !== '0'
    ? loadCheckDir(options.cacheRoot, options.path, {
      runtime: ort.env.versions.node ?? ort.env.versions.common,
      executionProviders: options.executionProviders,
      threads: options.threads,
      exactQuantized: options.exactQuantized,
      int8MatMul: options.int8MatMul,
      attention: options.attention,
      kvInPlace: lmOptions.kvInPlace,
      contextLength: options.contextLength,
      hiddenSize: options.hiddenSize,
      expected: options.expected,
    })
    : undefined;
  let unusable = '';
  const stored = checksDir ? readLoadChecks(checksDir) : undefined;
  if (checksDir && stored) {
    try {
      // Loaded from its file, the stored graph finds its external data beside it.
      const extra = { session: { ...lmOptions.sessionOptions.extra.session, model_external_initializers_file_folder_path: checksDir } };
      const lm = await OrtCausalLM.restore(ort, stored.graph, { ...lmOptions, sessionOptions: { ...lmOptions.sessionOptions, extra } }, stored.verdict);
      lm.checks = `from the cache (${checksDir}): no rewrite and no probe run`;
      return lm;
    } catch (error) {
      unusable = `; the stored verdict could not be used (${(error as Error).message.split('\n')[0]})`;
    }
  }
  if (!checksDir) return OrtCausalLM.create(ort, await bytes(), lmOptions);
  // The session that serves writes its optimized graph (weights in a file beside it) for the next start.
  // "extended": onnxruntime warns that a graph saved with layout optimizations ("all") is hardware
  // specific; those only rewrite convolutions, which these decoders do not have.
  const graph = optimizedGraphName();
  try {
    await mkdir(checksDir, { recursive: true });
    await access(checksDir, constants.W_OK);
  } catch (error) {
    const lm = await OrtCausalLM.create(ort, await bytes(), lmOptions);
    lm.checks = `run at load${unusable}; the verdict cannot be stored (${(error as Error).message.split('\n')[0]})`;
    return lm;
  }
  const lm = await OrtCausalLM.create(ort, await bytes(), {
    ...lmOptions,
    servingSessionOptions: {
      graphOptimizationLevel: 'extended',
      optimizedModelFilePath: join(checksDir, graph),
      extra: {
        session: {
          ...lmOptions.sessionOptions.extra.session,
          optimized_model_external_initializers_file_name: `${graph}.data`,
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        },
      },
    },
  });
  try {
    await storeLoadChecks(checksDir, lm.verdict, graph, options.path);
    const pruned = await pruneLoadChecks(checksDir, options.path);
    lm.checks = `run at load${unusable}; verdict stored in ${checksDir}${pruned.length ? ` (${pruned.length} unusable or least recently used verdicts removed)` : ''}`;
  } catch (error) {
    lm.checks = `run at load${unusable}; the verdict could not be stored (${(error as Error).message.split('\n')[0]})`;
  }
  return lm;
}

/** The embedding model's session, with the decoder's thread setting (it runs between the decoder's steps). */
export async function loadEmbedder(path: string, executionProviders: ort.InferenceSession.ExecutionProviderConfig[], dimensions: number, threadSleep?: boolean) {
  try {
    return await OrtEmbedder.create(ort, path, { executionProviders, extra: { session: threadEntries(threadSleep) } }, dimensions);
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(message.includes(path) ? message : `cannot load ${path}: ${message}`);
  }
}
