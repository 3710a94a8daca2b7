/**
 * Runs jobs step by step: every step forwards the planned tokens of all running jobs in one
 * backend call, then lets each job consume its logits. At most `maxConcurrent` jobs run; up to
 * `maxQueue` more wait; beyond that `submit` throws 429.
 * @module
 */
import { InferenceError } from '../errors.js';
import type { Backend } from './backend.js';
import type { Job } from './job.js';

export interface SchedulerOptions {
  maxConcurrent: number;
  maxQueue: number;
  /** Where failures of a step are reported (the jobs of that step fail with a 500). */
  onError?: (error: unknown) => void;
}

export interface Submission {
  job: Job;
  fail(error: unknown): void;
  /** Called when the job leaves the queue for the running batch. */
  onRun?(): void;
}

export class Scheduler {
  private readonly running: Submission[] = [];
  private readonly waiting: Submission[] = [];
  private looping = false;

  constructor(
    private readonly backend: Backend,
    private readonly options: SchedulerOptions,
  ) {}

  get load(): { running: number; waiting: number } {
    return { running: this.running.length, waiting: this.waiting.length };
  }

  submit(submission: Submission): void {
    // Jobs submitted while a step is in flight wait even when a slot is free, so count them all.
    if (this.running.length + this.waiting.length >= this.options.maxConcurrent + this.options.maxQueue) {
      throw new InferenceError(429, 'The server is at capacity: too many requests are waiting. Retry shortly.', {
        code: 'queue_full',
        headers: { 'retry-after': '1' },
      });
    }
    this.waiting.push(submission);
    if (!this.looping) void this.loop();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      for (;;) {
        this.retire();
        while (this.running.length < this.options.maxConcurrent && this.waiting.length > 0) {
          const next = this.waiting.shift()!;
          this.running.push(next);
          next.onRun?.();
        }
        this.retire();
        if (this.running.length === 0) break;
        await this.step();
      }
    } finally {
      this.looping = false;
    }
  }

  /** Drops finished and cancelled jobs (queued ones too) and frees their memory. */
  private retire(): void {
    for (const list of [this.running, this.waiting]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const { job } = list[i];
        if (job.done || job.cancelled) {
          job.dispose();
          list.splice(i, 1);
        }
      }
    }
  }

  private async step(): Promise<void> {
    const batch = this.running.slice();
    try {
      const plans = batch.map((s) => s.job.plan());
      const logits = await this.backend.forward(plans.flat());
      let offset = 0;
      for (let i = 0; i < batch.length; i++) {
        const rows = logits.slice(offset, (offset += plans[i].length));
        if (!batch[i].job.cancelled) await batch[i].job.advance(rows);
      }
    } catch (error) {
      this.options.onError?.(error);
      for (const submission of batch) {
        submission.job.cancel();
        submission.fail(error);
      }
    }
  }
}
