/**
 * Messages between the main thread and the inference worker.
 * @module
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { GraphExpectations } from '../../model/model-config.js';
import type { AttentionShape } from '../../onnx/onnx-attention-fusion.js';
import type { OrtCausalLMCounters } from '../../onnx/ort-causal-lm.js';
import type { BackendModelInfo, ForwardItem } from '../../runtime/backend.js';

export interface WorkerInit {
  /** `attention`: rewrite it into GroupQueryAttention (CPU only); absent: run the exported graph. */
  /** `int8MatMul`: rewrite dynamic int8 matmuls into 8-bit MatMulNBits (CPU only; see OrtCausalLM). */
  /** `cacheRoot`: where the load checks' verdicts are stored and found (see load-checks.ts). */
  model: { path: string; contextLength: number; hiddenSize: number; expected?: GraphExpectations; attention?: AttentionShape; int8MatMul?: boolean; cacheRoot?: string };
  embedding?: { path: string; dimensions: number };
  executionProviders: InferenceSession.ExecutionProviderConfig[];
  threads?: number;
  /** onnxruntime's threads sleep between ops instead of spinning (see ort-model.ts threadEntries). */
  threadSleep?: boolean;
  exactQuantized?: boolean;
  lookahead?: boolean;
}

export type WorkerRequest =
  | { id: number; op: 'forward'; items: ForwardItem[] }
  | { id: number; op: 'fork'; src: number; dst: number }
  | { id: number; op: 'release'; seq: number }
  | { id: number; op: 'hidden'; inputs: number[][]; adapter?: number }
  | { id: number; op: 'embed'; inputs: number[][] }
  | { id: number; op: 'stats' }
  | { id: number; op: 'dispose' };

/**
 * The reply to `forward`: `rows` logits rows of vocabSize floats at the start of the shared
 * logits buffer, which every forward reply overwrites: each item's, in order (one, or one per
 * token for an item with `allLogits`). `shared` comes only when the buffer was
 * (re)allocated; a new SharedArrayBuffer object per message would count its size as new
 * external memory on the main thread each time, and trigger its garbage collections.
 */
export interface ForwardReply {
  rows: number;
  shared?: SharedArrayBuffer;
}

export type WorkerResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; stack?: string } };

export interface WorkerReady {
  ready: true;
  info: BackendModelInfo;
  embeddingDimensions?: number;
  /** Which attention the model runs (see OrtCausalLM.attention). */
  attention: string;
  /** How many tokens a step may append (see OrtCausalLM.steps). */
  steps: string;
  /** How its dynamic int8 matmuls run (see OrtCausalLM.matmul); empty when it has none. */
  matmul: string;
  /** How the load checks ran: at load (verdict stored), or from the cache (see OrtCausalLM.checks). */
  checks: string;
}

export interface WorkerStats extends OrtCausalLMCounters {
  liveSequences: number;
}
