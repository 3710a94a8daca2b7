/**
 * KV caches of finished requests, kept for reuse: a new prompt that starts with the same tokens
 * forwards only the rest. Entries are bounded by a byte budget and evicted least recently used;
 * an entry owned by a /generate session is handed back to that session (no copy).
 * @module
 */

export interface CachedPrefix {
  seq: number;
  tokens: number[];
  owner?: string;
  /** The LoRA adapter its KV was computed under (0: the base model); only reused under the same. */
  adapter: number;
  lastUsed: number;
}

/** Shorter matches are not worth a copy. */
const MIN_REUSE = 2;


export class PrefixCache {
  private entries: CachedPrefix[] = [];
  private clock = 0;

  constructor(
    private readonly release: (seq: number) => void,
    private readonly budgetBytes: number,
    private readonly bytesPerToken: number,
    /**
     * Tokens of a prompt always forwarded, even when the whole prompt is cached: at least one, for
     * the next logits. Two for a model that quantizes activations: a one-token call runs the
     * decode path, whose float rounding differs slightly from the prefill that computed the same
     * position cold, and int8 activations can amplify that into a different greedy token; a call
     * of two or more tokens on a cache computes each row as the cold prefill does (checked in
     * test/integration/int8-matmul.test.ts).
     */
    private readonly minForwarded = 1,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.entries.reduce((sum, e) => sum + e.tokens.length * this.bytesPerToken, 0);
  }

  /**
   * The entry sharing the longest prefix with `tokens`, and how many tokens to reuse: at most
   * tokens.length - minForwarded (see the constructor).
   * The owner's own entry wins a tie.
   */
  lookup(tokens: number[], owner?: string, adapter = 0): { entry: CachedPrefix; length: number } | undefined {
    let best: { entry: CachedPrefix; length: number } | undefined;
    for (const entry of this.entries) {
      if (entry.adapter !== adapter) continue;
      const length = Math.min(commonPrefix(entry.tokens, tokens), tokens.length - this.minForwarded);
      if (!best || length > best.length || (length === best.length && owner !== undefined && entry.owner === owner)) {
        best = { entry, length };
      }
    }
    if (!best || best.length < MIN_REUSE) return undefined;
    best.entry.lastUsed = ++this.clock;
    return best;
  }

  /** Removes an entry without freeing its sequence: the caller owns it now. */
  take(entry: CachedPrefix): void {
    this.entries = this.entries.filter((e) => e !== entry);
  }

  /** Keeps a finished sequence; replaces the owner's previous entry; evicts beyond the budget. */
  insert(seq: number, tokens: number[], owner?: string, adapter = 0): void {
    if (owner !== undefined) this.drop(owner);
    this.entries.push({ seq, tokens, owner, adapter, lastUsed: ++this.clock });
    this.entries.sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.entries.length > 0 && this.bytes > this.budgetBytes) this.release(this.entries.shift()!.seq);
  }

  /** Forgets the owner's entry, if any. */
  drop(owner: string): void {
    for (const entry of this.entries.filter((e) => e.owner === owner)) {
      this.take(entry);
      this.release(entry.seq);
    }
  }

  clear(): void {
    for (const entry of this.entries) this.release(entry.seq);
    this.entries = [];
  }
}

function commonPrefix(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
