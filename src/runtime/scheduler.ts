/**
 * Runs jobs step by step: every step forwards the planned tokens of all running jobs in one
 * backend call, then lets each job consume its logits. Limits count sequences, not requests:
 * a job holds `width` of them (n choices, beams), at most `maxConcurrent` run, up to `maxQueue`
 * more wait, and beyond that `submit` throws 429 with the wait the queue really has.
 *
 * Side jobs (embeddings) forward nothing in the batch: one of them advances per step, in turn,
 * so an embeddings request shares the backend with the decodes instead of holding it.
 * @module
 */
import { InferenceError } from '../errors.js';
import type { Backend, ForwardItem } from './backend.js';

/** What the scheduler runs: a generation Job, or a side job such as an embeddings request. */
export interface SchedulerJob {
  /** Sequences this job holds in the backend at most (n, beams; 1 for a side job). */
  readonly width: number;
  /** A side job plans no forward items; its `advance([])` does one bounded piece of its own work. */
  readonly side?: boolean;
  readonly done: boolean;
  readonly cancelled: boolean;
  /** The LoRA adapter of the job's sequences (0 or absent: the base model), put on each of its items. */
  readonly adapter?: number;
  /**
   * This step's items. `alone`: the job is the only one forwarding in this step, so a greedy job
   * may verify a prompt-lookup draft (one multi-token item) where a batch would otherwise
   * amortise the weights over several sequences.
   */
  plan(alone?: boolean): ForwardItem[];
  advance(logits: Float32Array[]): Promise<void>;
  cancel(): void;
  dispose(): void;
}

export interface SchedulerOptions {
  /** Concurrent sequences. */
  maxConcurrent: number;
  /** Sequences waiting beyond those. */
  maxQueue: number;
  /** Where failures of a step are reported (the jobs of that step fail with a 500). */
  onError?: (error: unknown) => void;
  now?: () => number;
}

export interface Submission {
  job: SchedulerJob;
  fail(error: unknown): void;
  /** Called when the job leaves the queue for the running batch. */
  onRun?(): void;
}

interface Entry extends Submission {
  admittedAt?: number;
}

/** Weight of the newest job in the running average of job durations. */
const AVERAGE_WEIGHT = 0.2;

export class Scheduler {
  private readonly running: Entry[] = [];
  private readonly waiting: Entry[] = [];
  private looping = false;
  private nextSide = 0;
  /** Running average of how long an admitted job runs, in ms (0 until one has finished). */
  private averageJobMs = 0;
  private readonly now: () => number;

  constructor(
    private readonly backend: Backend,
    private readonly options: SchedulerOptions,
  ) {
    this.now = options.now ?? (() => Date.now());
  }

  get load(): { running: number; waiting: number } {
    return { running: this.running.length, waiting: this.waiting.length };
  }

  /** Sequences running and waiting (what the limits count). */
  get sequences(): { running: number; waiting: number } {
    return { running: width(this.running), waiting: width(this.waiting) };
  }

  submit(submission: Submission): void {
    const { maxConcurrent, maxQueue } = this.options;
    const w = submission.job.width;
    if (w > maxConcurrent) {
      throw new InferenceError(400, `This request needs ${w} sequences at once; this server runs at most ${maxConcurrent} at once.`, {
        param: 'n',
        code: 'too_many_sequences',
      });
    }
    // Jobs submitted while a step is in flight wait even when a slot is free, so count them all.
    if (width(this.running) + width(this.waiting) + w > maxConcurrent + maxQueue) {
      throw new InferenceError(429, 'The server is at capacity: too many requests are waiting. Retry shortly.', {
        code: 'queue_full',
        headers: { 'retry-after': String(this.retryAfterSeconds(w)) },
      });
    }
    this.waiting.push(submission);
    if (!this.looping) void this.loop();
  }

  /**
   * Seconds until a request of `w` sequences would likely find room: the queue ahead drains
   * `maxConcurrent` sequences per average job duration. At least 1.
   */
  retryAfterSeconds(w = 1): number {
    if (this.averageJobMs === 0) return 1;
    const ahead = width(this.running) + width(this.waiting) + w - this.options.maxConcurrent - this.options.maxQueue;
    const rounds = Math.max(1, Math.ceil(ahead / this.options.maxConcurrent));
    return Math.max(1, Math.ceil((rounds * this.averageJobMs) / 1000));
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      for (;;) {
        this.retire();
        // In order: a wide job at the head waits for room rather than being overtaken for ever.
        while (this.waiting.length > 0 && width(this.running) + this.waiting[0].job.width <= this.options.maxConcurrent) {
          const entry = this.waiting.shift()!;
          entry.admittedAt = this.now();
          this.running.push(entry);
          entry.onRun?.();
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
        const { job, admittedAt } = list[i];
        if (job.done || job.cancelled) {
          if (job.done && admittedAt !== undefined) this.record(this.now() - admittedAt);
          job.dispose();
          list.splice(i, 1);
        }
      }
    }
  }

  private record(ms: number): void {
    this.averageJobMs = this.averageJobMs === 0 ? ms : this.averageJobMs + AVERAGE_WEIGHT * (ms - this.averageJobMs);
  }

  private async step(): Promise<void> {
    const batch = this.running.filter((s) => !s.job.side);
    const sides = this.running.filter((s) => s.job.side);
    if (batch.length > 0) await this.forwardStep(batch);
    if (sides.length > 0) await this.sideStep(sides[this.nextSide++ % sides.length]);
  }

  private async forwardStep(batch: Entry[]): Promise<void> {
    try {
      const plans = batch.map((s) => withAdapter(s.job.plan(batch.length === 1), s.job.adapter));
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

  private async sideStep(entry: Entry): Promise<void> {
    if (entry.job.cancelled) return;
    try {
      await entry.job.advance([]);
    } catch (error) {
      this.options.onError?.(error);
      entry.job.cancel();
      entry.fail(error);
    }
  }
}

const width = (entries: Entry[]) => entries.reduce((sum, e) => sum + e.job.width, 0);

/** A job's items with its LoRA adapter on each (left as planned for the base model). */
function withAdapter(items: ForwardItem[], adapter: number | undefined): ForwardItem[] {
  return adapter ? items.map((item) => ({ ...item, adapter })) : items;
}
