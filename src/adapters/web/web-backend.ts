/**
 * The in-thread backend on onnxruntime-web: the shared OrtCausalLM (and OrtEmbedder) behind one
 * queue, so calls take effect in the order the engine makes them (as the Node worker's message
 * queue does), with an event-loop turn before each run so streams, timers and other requests are
 * not starved.
 * @module
 */
import type { Backend, BackendModelInfo, EmbeddingBackend, ForwardItem } from '../../runtime/backend.js';
import type { OrtCausalLM, OrtCausalLMCounters } from '../../onnx/ort-causal-lm.js';
import type { OrtEmbedder } from '../../onnx/ort-embedder.js';
import { createYield } from './yield-to-event-loop.js';

export interface WebBackendStats extends OrtCausalLMCounters {
  liveSequences: number;
}

export class WebBackend implements Backend {
  readonly info: BackendModelInfo;
  readonly embedding: EmbeddingBackend | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly yieldTurn = createYield();

  constructor(
    private readonly model: OrtCausalLM,
    embedder?: OrtEmbedder,
  ) {
    this.info = model.info;
    this.embedding = embedder && {
      dimensions: embedder.dimensions,
      embed: (inputs) => this.run(() => embedder.embed(inputs), true),
      dispose: () => this.run(() => embedder.dispose()),
    };
  }

  forward(items: ForwardItem[]): Promise<Float32Array[]> {
    return this.run(() => this.model.forward(items), true);
  }

  fork(src: number, dst: number): Promise<void> {
    return this.run(async () => this.model.fork(src, dst));
  }

  release(seq: number): void {
    this.run(async () => this.model.release(seq)).catch(() => {});
  }

  hiddenStates(inputs: number[][], adapter?: number): Promise<Float32Array[]> {
    return this.run(() => this.model.hiddenStates(inputs, adapter), true);
  }

  /** Live sequences and the model's step counters, for tests and diagnostics. */
  stats(): WebBackendStats {
    return { liveSequences: this.model.liveSequences, ...this.model.counters };
  }

  dispose(): Promise<void> {
    return this.run(() => this.model.dispose());
  }

  private run<T>(task: () => Promise<T>, yieldFirst = false): Promise<T> {
    const result = this.queue.then(async () => {
      if (yieldFirst) await this.yieldTurn();
      return task();
    });
    this.queue = result.catch(() => {});
    return result;
  }
}
