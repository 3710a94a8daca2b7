/**
 * What the engine counts for operators, as plain numbers: the runtime knows no wire format (the
 * metrics handler renders Prometheus text). Counters only grow; gauges are read when asked.
 * @module
 */
import type { FinishReason } from './types.js';

/** A histogram as Prometheus keeps one: per-bucket counts (not cumulative), their sum and count. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ascending; a last `+Inf` bucket is implied. */
  bounds: number[];
  /** counts[i] observations fell in (bounds[i-1], bounds[i]]; counts[bounds.length] above the last bound. */
  counts: number[];
  sum: number;
  count: number;
}

/** How a request ended: its finish reason, or cancelled (client gone), or failed (a step error). */
export type RequestOutcome = FinishReason | 'abort' | 'error';

export interface RuntimeMetrics {
  /** The model these numbers are for (the first name it is served under). */
  model: string;
  requestsRunning: number;
  requestsWaiting: number;
  /** Counter: prompt tokens of started requests (cached ones included). */
  promptTokens: number;
  /** Counter: tokens generated (every choice). */
  generationTokens: number;
  /** Counter: finished requests by outcome. */
  requestsFinished: Record<RequestOutcome, number>;
  /** Counter: requests refused because the queue was full (429). */
  requestsRejected: number;
  /** Counter: prompt tokens looked up in the prefix cache, and those found there (not forwarded again). */
  prefixCacheQueries: number;
  prefixCacheHits: number;
  /** KV cache bytes held now: running sequences plus kept prefixes and idle sessions. */
  kvCacheBytes: number;
  /** Of those, kept for reuse (prefix cache and idle sessions). */
  kvCacheKeptBytes: number;
  /** The byte budget of kept KV (0 when reuse is off). */
  kvCacheBudgetBytes: number;
  /** `/generate` sessions this runtime holds. */
  sessionsOpen: number;
  /** onnxruntime-web's wasm memory, where the host can see it (workerd). */
  wasmMemoryBytes?: number;
  /** Seconds from accepting a request to its first generated token. */
  timeToFirstToken: HistogramSnapshot;
  /** Seconds between consecutive tokens of one choice. */
  interTokenLatency: HistogramSnapshot;
  /** Seconds from accepting a request to its end, however it ended. */
  e2eRequestLatency: HistogramSnapshot;
  /** Seconds a request waited for a slot before its first step. */
  queueTime: HistogramSnapshot;
  /**
   * Counters of prompt-lookup speculative decoding, when it is on: drafts verified, their tokens,
   * and the tokens accepted (the acceptance rate is acceptedTokens / draftTokens).
   */
  specDecode?: { drafts: number; draftTokens: number; acceptedTokens: number };
}

// vLLM's buckets, so dashboards built for it read these the same way.
export const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
export const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
export const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: number[]) {
    this.counts = new Array(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds.slice(), counts: this.counts.slice(), sum: this.sum, count: this.count };
  }
}

/**
 * One request's clock: the engine calls it as events happen, and it feeds the shared counters.
 * Times are milliseconds from `now()`; histograms hold seconds.
 */
export interface RequestTimer {
  /** The first step that includes this request. */
  scheduled(): void;
  /** `count` tokens of choice `index` arrived. */
  tokens(index: number, count: number): void;
  /** The request ended; the first call wins. */
  end(outcome: RequestOutcome): void;
  /** The queue refused the request (429): it counts as rejected and nothing else. */
  reject(): void;
}

export class MetricsRecorder {
  promptTokens = 0;
  generationTokens = 0;
  requestsRejected = 0;
  prefixCacheQueries = 0;
  prefixCacheHits = 0;
  drafts = 0;
  draftTokens = 0;
  acceptedTokens = 0;
  readonly requestsFinished: Record<RequestOutcome, number> = { stop: 0, length: 0, tool_calls: 0, abort: 0, error: 0 };
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly itl = new Histogram(ITL_BUCKETS);
  readonly e2e = new Histogram(E2E_BUCKETS);
  readonly queue = new Histogram(TTFT_BUCKETS);

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A prompt-lookup draft of `drafted` tokens was verified; `accepted` of them were kept. */
  draft(drafted: number, accepted: number): void {
    this.drafts++;
    this.draftTokens += drafted;
    this.acceptedTokens += accepted;
  }

  /** A request was accepted with this many prompt tokens, `cached` of them from kept KV. */
  start(promptTokens: number, cached: number, cacheOn: boolean): RequestTimer {
    const count = (sign: number) => {
      this.promptTokens += sign * promptTokens;
      if (cacheOn) {
        this.prefixCacheQueries += sign * promptTokens;
        this.prefixCacheHits += sign * cached;
      }
    };
    count(1);
    const started = this.now();
    const last = new Map<number, number>();
    let first = true;
    let queued = true;
    let ended = false;
    return {
      scheduled: () => {
        if (!queued) return;
        queued = false;
        this.queue.observe((this.now() - started) / 1000);
      },
      tokens: (index, count) => {
        if (count <= 0 || ended) return;
        const t = this.now();
        this.generationTokens += count;
        if (first) {
          first = false;
          this.ttft.observe((t - started) / 1000);
        }
        const previous = last.get(index);
        // Tokens that arrive together (a stop string held back, beams) count as one interval each.
        if (previous !== undefined) for (let i = 0; i < count; i++) this.itl.observe((t - previous) / 1000 / count);
        last.set(index, t);
      },
      end: (outcome) => {
        if (ended) return;
        ended = true;
        this.requestsFinished[outcome]++;
        this.e2e.observe((this.now() - started) / 1000);
      },
      reject: () => {
        if (ended) return;
        ended = true;
        count(-1);
        this.requestsRejected++;
      },
    };
  }
}
