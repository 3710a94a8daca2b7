/**
 * onnxruntime-node loading for the inference worker: files from disk, external data next to the
 * model, CPU threads. The model logic itself is shared with the web adapter (src/internal).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { GraphExpectations } from '../../model/model-config.js';
import type { AttentionShape } from '../../onnx/onnx-attention-fusion.js';
import { OrtCausalLM } from '../../onnx/ort-causal-lm.js';
import { OrtEmbedder } from '../../onnx/ort-embedder.js';

export interface OrtModelOptions {
  path: string;
  executionProviders: ort.InferenceSession.ExecutionProviderConfig[];
  threads?: number;
  /**
   * Batch-invariant int8: weight-only int8 (DequantizeLinear) is not fused into int8 compute, and
   * a graph that computes with int8 activations runs each sequence alone (OrtCausalLM.exactBatches).
   */
  exactQuantized?: boolean;
  /** Start each greedy decode step before the engine asks for it (see OrtCausalLM). */
  lookahead?: boolean;
  contextLength: number;
  hiddenSize: number;
  expected?: GraphExpectations;
  attention?: AttentionShape;
  /** Rewrite dynamic int8 matmuls into 8-bit MatMulNBits (see OrtCausalLM). */
  int8MatMul?: boolean;
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
  const bytes = new Uint8Array(await readFile(options.path));
  return OrtCausalLM.create(ort, bytes, {
    name: options.path,
    contextLength: options.contextLength,
    hiddenSize: options.hiddenSize,
    expected: options.expected,
    lookahead: options.lookahead,
    attention: options.attention,
    int8MatMul: options.int8MatMul,
    exactBatches: options.exactQuantized,
    sessionOptions: {
      executionProviders: options.executionProviders,
      ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
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
        },
      },
    },
  });
}

export async function loadEmbedder(path: string, executionProviders: ort.InferenceSession.ExecutionProviderConfig[], dimensions: number) {
  try {
    return await OrtEmbedder.create(ort, path, { executionProviders }, dimensions);
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(message.includes(path) ? message : `cannot load ${path}: ${message}`);
  }
}
