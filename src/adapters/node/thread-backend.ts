/**
 * The main-thread side of the inference worker: a Backend (and EmbeddingBackend) whose calls
 * are messages. Logits come back in one SharedArrayBuffer that every step reuses: no copy, and
 * no new memory per step for the main thread's garbage collector to account for.
 * @module
 */
import { Worker } from 'node:worker_threads';
import { InferenceError } from '../../errors.js';
import type { Backend, BackendModelInfo, EmbeddingBackend, ForwardItem } from '../../runtime/backend.js';
import type { ForwardReply, WorkerInit, WorkerReady, WorkerRequest, WorkerResponse, WorkerStats } from './thread-protocol.js';

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };
type Op = WorkerRequest extends infer R ? (R extends { op: infer O } ? O : never) : never;

export class WorkerBackend implements Backend {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Why no call can run any more (the thread died, or the model was unloaded). */
  failure: Error | undefined;
  private disposing = false;
  private logits: Float32Array = new Float32Array(0);
  readonly embedding: EmbeddingBackend | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly info: BackendModelInfo,
    embeddingDimensions: number | undefined,
    /** Which attention the model runs: GroupQueryAttention, or the exported graph and why. */
    readonly attention: string,
    /** How many tokens a step may append, and why when limited. */
    readonly steps: string,
    /** How dynamic int8 matmuls run (8-bit MatMulNBits, or as exported and why); empty when none. */
    readonly matmul: string,
    /** How the load checks ran: at load (verdict stored), or from the cache. */
    readonly checks: string,
    private readonly onFailure?: (error: Error) => void,
  ) {
    worker.on('message', (message: WorkerResponse) => this.settle(message));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`The inference worker exited (code ${code}).`)));
    this.embedding =
      embeddingDimensions === undefined
        ? undefined
        : { dimensions: embeddingDimensions, embed: (inputs) => this.call('embed', { inputs }) as Promise<Float32Array[]>, dispose: async () => {} };
  }

  /** Starts the worker and waits until its models are loaded; load errors reject here. */
  static start(workerUrl: URL, init: WorkerInit, onFailure?: (error: Error) => void): Promise<WorkerBackend> {
    const worker = new Worker(workerUrl, { workerData: init });
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      const onExit = (code: number) => reject(new Error(`The inference worker exited during loading (code ${code}).`));
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.once('message', (ready: WorkerReady) => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(new WorkerBackend(worker, ready.info, ready.embeddingDimensions, ready.attention, ready.steps, ready.matmul, ready.checks, onFailure));
      });
    });
  }

  async forward(items: ForwardItem[]): Promise<Float32Array[]> {
    const reply = (await this.call('forward', { items })) as ForwardReply;
    if (reply.shared) this.logits = new Float32Array(reply.shared);
    const vocab = this.info.vocabSize;
    // One row per item, or one per token for `allLogits`, laid out in item order.
    let offset = 0;
    const out = items.map((item) => this.logits.subarray(offset, (offset += (item.allLogits ? item.tokens.length : 1) * vocab)));
    if (offset !== reply.rows * vocab) throw new Error(`The inference worker returned ${reply.rows} logits rows for ${offset / vocab}.`);
    return out;
  }

  async fork(src: number, dst: number): Promise<void> {
    await this.call('fork', { src, dst });
  }

  release(seq: number): void {
    if (!this.failure) this.call('release', { seq }).catch(() => {});
  }

  hiddenStates(inputs: number[][], adapter?: number): Promise<Float32Array[]> {
    return this.call('hidden', { inputs, adapter }) as Promise<Float32Array[]>;
  }

  stats(): Promise<WorkerStats> {
    return this.call('stats', {}) as Promise<WorkerStats>;
  }

  async dispose(): Promise<void> {
    if (this.failure) return;
    this.disposing = true;
    await this.call('dispose', {}).catch(() => {});
    this.failure = new InferenceError(503, 'The model has been unloaded.');
    await this.worker.terminate();
  }

  private call(op: Op, payload: object): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...payload });
    });
  }

  private settle(message: WorkerResponse): void {
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(Object.assign(new Error(message.error.message), { stack: message.error.stack }));
  }

  /** The thread died: every waiting call fails with a 503 at once, and the owner hears of it once. */
  private fail(error: Error): void {
    if (this.failure || this.disposing) return;
    this.failure = new InferenceError(503, `The inference worker stopped: ${error.message}`, { code: 'backend_failed' });
    for (const { reject } of this.pending.values()) reject(this.failure);
    this.pending.clear();
    this.onFailure?.(error);
  }
}
