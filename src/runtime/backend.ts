/**
 * The backend interface: "run one forward step on these sequences". Adapters implement it
 * (onnxruntime-node in a worker thread, onnxruntime-web in-process). The backend owns the
 * KV cache of every live sequence; the engine names sequences with small integers.
 * @module
 */

export interface BackendModelInfo {
  vocabSize: number;
  hiddenSize: number;
  contextLength: number;
  /** Bytes of KV cache one token occupies (for cache budgets); 0 when unknown. */
  kvBytesPerToken?: number;
  /** false when `hiddenStates` cannot work (the graph's hidden state was not found). */
  hiddenStates?: boolean;
  /**
   * False when a sequence's logits may depend on what else is in the call (a graph that quantizes
   * activations with one scale per call). The engine then reuses no other request's cached
   * prefix, so a cache hit cannot change a reply. Default true.
   */
  batchInvariant?: boolean;
  /**
   * True when the graph quantizes activations (int8 matmuls): a cached prompt then has its last
   * two tokens recomputed rather than one (see PrefixCache). Default false.
   */
  quantizedActivations?: boolean;
  /**
   * True when the backend checked that a multi-token step gives the same logits, bit for bit, as
   * the same tokens one at a time (then even int8 activations allow drafts). Default false.
   */
  rowInvariant?: boolean;
}

/**
 * Whether a sequence's logits may depend on how its tokens are grouped into calls: a graph that is
 * not batch-invariant, unless its steps were shown row-invariant (then each sequence runs in a call
 * of its own, and grouping its tokens differently changes nothing). Where true, the engine neither
 * drafts nor reuses another request's cached prefix.
 */
export function groupingChangesLogits(info: BackendModelInfo): boolean {
  return info.batchInvariant === false && !info.rowInvariant;
}

export interface ForwardItem {
  /** Sequence id chosen by the engine. A new id starts with an empty KV cache. */
  seq: number;
  /** Tokens to append to the sequence (the whole prompt on prefill, one token when decoding). */
  tokens: number[];
  /**
   * Before appending, make `seq` the first `length` tokens of `source.seq`'s cache (a copy, or a
   * truncation in place when it is `seq` itself). This is how cached prefixes are reused.
   */
  source?: { seq: number; length: number };
  /**
   * A promise about the next call: unless the caller stops this sequence, the token it sends next
   * is the argmax of the logits returned for this item. A backend may start that step early; it
   * must give exactly the results it would give without the hint.
   */
  greedyNext?: boolean;
  /**
   * With `greedyNext`: the promised token is the argmax over the tokens set in this bitset (bit
   * `id & 31` of word `id >>> 5`; ties to the lowest id), not over the whole row. A constrained
   * greedy row sends its mask. Read only: it may be shared with the caller's cache.
   */
  greedyAmong?: Uint32Array;
  /**
   * The LoRA adapter the sequence runs with (`--lora-modules`): 0 or absent is the base model. A
   * sequence keeps the adapter it started with; a backend refuses to extend a sequence, or to
   * start one from a cached prefix (`source`), under another adapter: that KV was computed with
   * other weights.
   */
  adapter?: number;
  /**
   * Return the logits of every new position of this item, not only the last: its Float32Array is
   * `tokens.length x vocabSize`, row-major (row i follows `tokens[i]`). A greedy job verifying a
   * prompt-lookup draft sends its next token and the draft in one item with this flag, and drops
   * the positions it rejects with `source: { seq, length }` on its next item.
   */
  allLogits?: boolean;
}

export interface Backend {
  readonly info: BackendModelInfo;
  /**
   * Appends each item's tokens to its sequence and returns the logits of each item's last
   * position (one Float32Array of length vocabSize per item, in order; `tokens.length x vocabSize`
   * for an item with `allLogits`). The arrays may be views
   * of memory the backend reuses: they are valid until the next `forward` call, and a caller
   * copies what it keeps longer. They may be modified in place.
   */
  forward(items: ForwardItem[]): Promise<Float32Array[]>;
  /** Makes `dst` a copy of `src` (its KV cache), for beams and n > 1. Replaces any `dst`. */
  fork(src: number, dst: number): Promise<void>;
  /** Frees a sequence's KV cache. Unknown ids are ignored. */
  release(seq: number): void;
  /** Mean-pooled final hidden state of each token list (no KV kept), under `adapter` (0: the base). Length hiddenSize. */
  hiddenStates(inputs: number[][], adapter?: number): Promise<Float32Array[]>;
  dispose(): Promise<void>;
  /**
   * Set when the backend can no longer run anything (its thread died): the runtime reports
   * `failed`, so health checks fail and a supervisor can restart the server.
   */
  readonly failure?: Error;
}

/** A sentence-embedding model (mean pooling + L2 normalisation happen in the backend). */
export interface EmbeddingBackend {
  readonly dimensions: number;
  embed(inputs: number[][]): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}
