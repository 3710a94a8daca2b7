/**
 * An embeddings request as a scheduler side job: each turn it embeds the next inputs, as many as
 * fit in `tokenBudget` tokens (at least one), so a request of many inputs takes many short turns
 * between decode steps, stops when cancelled, and waits in the same queue as generations.
 * @module
 */
import { InferenceError } from '../errors.js';
import type { ForwardItem } from './backend.js';
import type { SchedulerJob } from './scheduler.js';

export class EmbedJob implements SchedulerJob {
  readonly width = 1;
  readonly side = true;
  done = false;
  cancelled = false;
  readonly result: Promise<Float32Array[]>;
  private next = 0;
  private readonly vectors: Float32Array[] = [];
  private settle!: { resolve(v: Float32Array[]): void; reject(e: unknown): void };

  constructor(
    private readonly inputs: number[][],
    private readonly run: (batch: number[][]) => Promise<Float32Array[]>,
    private readonly tokenBudget: number,
  ) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => {}); // the caller may be gone; its rejection is not an unhandled one
  }

  plan(): ForwardItem[] {
    return [];
  }

  async advance(): Promise<void> {
    const start = this.next;
    let end = start + 1;
    let tokens = this.inputs[start].length;
    while (end < this.inputs.length && tokens + this.inputs[end].length <= this.tokenBudget) tokens += this.inputs[end++].length;
    const vectors = await this.run(this.inputs.slice(start, end));
    this.vectors.push(...vectors);
    this.next = end;
    if (this.next >= this.inputs.length) {
      this.done = true;
      this.settle.resolve(this.vectors);
    }
  }

  cancel(): void {
    this.cancelled = true;
  }

  /** Called once the scheduler lets go of the job (or it never got in). */
  dispose(): void {
    if (!this.done) this.settle.reject(new InferenceError(499, 'The request was cancelled.', { code: 'cancelled' }));
  }

  /** Ends the job with an error (a failed step); the scheduler then disposes it. */
  fail(error: unknown): void {
    this.cancelled = true;
    this.settle.reject(error);
  }
}
