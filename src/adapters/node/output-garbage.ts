/**
 * Collects the inference worker's garbage when it is large. onnxruntime-node returns a JS copy of
 * every fetched output (pre-allocated ones included): a 512-token prefill's logits are 100 MB on a
 * 49k vocabulary, and every decode step copies the whole batch's KV cache out once more (47 MB a step
 * at 8 streams of ~130 positions on SmolLM2). The thread's own heap is a few MB, so V8 sees little
 * reason to collect, and those copies stayed resident (100-300 MB in the race) until it did, or for as
 * long as the server then sat idle. A full collection of this small heap takes 10-20 ms, so it runs
 * after prefills (seconds long, and the largest copies) and when the thread is idle.
 * @module
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface OutputGarbageOptions {
  /** Runs a full garbage collection. */
  gc: () => void;
  /** Bytes of external memory (array buffers) of this thread's heap. */
  external: () => number;
  /** Collect after a long request once external memory grew this much since the last collection. */
  thresholdBytes: number;
  /** Collect this long after the last request when anything grew since the last collection. */
  idleMs: number;
}

export class OutputGarbage {
  private floor: number;
  private idle: ReturnType<typeof setTimeout> | undefined;
  /** Collections run (for tests and the benchmark). */
  collections = 0;

  constructor(private readonly o: OutputGarbageOptions) {
    this.floor = o.external();
  }

  /**
   * Call after every request the thread handled; `long` for one that ran long enough that a
   * collection's few milliseconds do not matter (a prefill). Decode steps are left to V8 while they
   * come: a forced collection every few steps slowed decoding after a 512-token prompt to 0.6x.
   */
  after(long: boolean): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const grown = this.o.external() - this.floor;
    if (long && grown >= this.o.thresholdBytes) return this.collect();
    if (grown > 0) {
      this.idle = setTimeout(() => this.collect(), this.o.idleMs);
      this.idle.unref?.();
    }
  }

  collect(): void {
    this.idle = undefined;
    this.o.gc();
    this.collections++;
    this.floor = this.o.external();
  }
}

/**
 * V8's `gc()`: the global when node runs with --expose-gc, else exposed here (V8 flags are
 * process-wide; a new context then has it, as jest's leak detector does it). Undefined if neither works.
 */
export function exposedGc(): (() => void) | undefined {
  const global = (globalThis as { gc?: () => void }).gc;
  if (typeof global === 'function') return global;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The bytes of this thread's array buffers (V8's own external-memory figure only drops one collection
 * later; this one drops at once).
 */
export const externalBytes = () => process.memoryUsage().arrayBuffers;
