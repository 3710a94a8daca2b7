/**
 * The token-level layer: which tokens may come next, from a byte matcher state. Token byte strings
 * are sorted into a trie (built once per tokenizer and shared by every grammar), walked depth-first
 * with the matcher state of each prefix, so a shared prefix is matched once and a refused prefix
 * prunes its whole subtree. Masks are cached per matcher state: a JSON Schema revisits the same
 * few states (inside a string, after a comma...) over and over.
 * @module
 */
import { ACCEPT, ByteMatcher, REFUSED, type MatchState } from './matcher.js';

/** Token byte strings in a preorder trie: node i adds byte `byte[i]` at depth `depth[i]`; its subtree ends before `end[i]`. */
export class TokenTrie {
  readonly byte: Uint8Array;
  readonly depth: Uint16Array;
  readonly end: Int32Array;
  /** Tokens ending at node i: tokens[tokenStart[i] .. tokenStart[i + 1]). */
  readonly tokenStart: Int32Array;
  readonly tokens: Int32Array;
  readonly maxDepth: number;

  constructor(
    /** Each token id's bytes; null (special tokens) and empty tokens are never allowed by a grammar. */
    readonly tokenBytes: ReadonlyArray<Uint8Array | null>,
  ) {
    const ids: number[] = [];
    tokenBytes.forEach((b, id) => b && b.length > 0 && ids.push(id));
    const cmp = (x: Uint8Array, y: Uint8Array): number => {
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
      return x.length - y.length;
    };
    ids.sort((a, b) => cmp(tokenBytes[a]!, tokenBytes[b]!));
    const byte: number[] = [];
    const depth: number[] = [];
    const nodeOfToken: number[] = [];
    let prev: Uint8Array = new Uint8Array(0);
    let maxDepth = 0;
    for (const id of ids) {
      const b = tokenBytes[id]!;
      let l = 0;
      while (l < b.length && l < prev.length && b[l] === prev[l]) l++;
      for (let d = l; d < b.length; d++) {
        byte.push(b[d]);
        depth.push(d + 1);
      }
      // an identical byte string ends at the previous token's node
      nodeOfToken.push(l === b.length && l === prev.length ? nodeOfToken[nodeOfToken.length - 1] : byte.length - 1);
      prev = b;
      maxDepth = Math.max(maxDepth, b.length);
    }
    const n = byte.length;
    this.byte = Uint8Array.from(byte);
    this.depth = Uint16Array.from(depth);
    this.end = new Int32Array(n);
    // end[i]: the first later node at depth <= depth[i]
    const open: number[] = [];
    for (let i = 0; i < n; i++) {
      while (open.length > 0 && depth[open[open.length - 1]] >= depth[i]) this.end[open.pop()!] = i;
      open.push(i);
    }
    for (const i of open) this.end[i] = n;
    const counts = new Int32Array(n + 1);
    for (const node of nodeOfToken) counts[node + 1]++;
    for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
    this.tokenStart = counts;
    this.tokens = new Int32Array(ids.length);
    const fill = counts.slice(0, n);
    ids.forEach((id, k) => (this.tokens[fill[nodeOfToken[k]]++] = id));
    this.maxDepth = maxDepth;
  }

  get nodeCount(): number {
    return this.byte.length;
  }
}

const trieCache = new WeakMap<object, TokenTrie>();

/** The trie of a token byte table, built once per table. */
export function tokenTrie(tokenBytes: ReadonlyArray<Uint8Array | null>): TokenTrie {
  let trie = trieCache.get(tokenBytes);
  if (!trie) trieCache.set(tokenBytes, (trie = new TokenTrie(tokenBytes)));
  return trie;
}

/** A bitset over token ids. */
export type TokenMask = Uint32Array;

export const maskHas = (mask: TokenMask, id: number): boolean => ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;

const MASK_CACHE = 512;
/** Context-free parts held by one grammar (most are shared by structure too). */
const LOCAL_CACHE = 64;
/** Closing-cost tables take two bytes per token: about 32 MiB of them at most. */
const costCacheSize = (vocabSize: number) => Math.max(16, Math.min(512, Math.floor((32 << 20) / (2 * vocabSize))));
/** In a cost table: the token is refused. */
export const NO_TOKEN = 0xffff;

/** Masks of one grammar over one tokenizer's trie. */
export class TokenMasker {
  private readonly cache = new Map<string, TokenMask>();
  /** Interned matcher state at each trie depth during a walk. */
  private readonly ids: Int32Array;
  /** Full masks computed (cache misses), for tests and the bench. */
  computed = 0;
  /** Context-free parts walked (neither this grammar nor another on the tokenizer had them), for tests and the bench. */
  localComputed = 0;
  private readonly words: number;

  constructor(
    readonly matcher: ByteMatcher,
    readonly trie: TokenTrie,
    readonly vocabSize: number,
  ) {
    this.ids = new Int32Array(trie.maxDepth + 1);
    this.words = (vocabSize + 31) >>> 5;
  }

  /** Whether token `id`'s bytes can follow `state` (special tokens never can). */
  allows(state: MatchState, id: number): boolean {
    const b = this.trie.tokenBytes[id];
    if (!b || b.length === 0) return false;
    return this.matcher.stepBytes(state, b).length > 0;
  }

  /** Every token whose bytes can follow `state` (not end-of-sequence: the caller adds that). */
  mask(state: MatchState): TokenMask {
    return cached(this.cache, MASK_CACHE, state, () => {
      this.computed++;
      return this.composeMask(state);
    });
  }

  /**
   * A mask from its context-free part: the state cut at its stacks' common ancestor (`detach`)
   * allows the same tokens in every context, so that part is walked once and shared (by this
   * grammar, and by every grammar on this tokenizer with the same construct, see `local`). Only
   * tokens that run past the construct's end (a string's closing quote and what follows) depend
   * on the context: the trie subtrees below those nodes are walked from the continuation.
   */
  private composeMask(state: MatchState): TokenMask {
    const mask = new Uint32Array(this.words);
    const set = (id: number) => (mask[id >>> 5] |= 1 << (id & 31));
    const m = this.matcher;
    const ancestor = m.commonAncestor(state);
    if (ancestor < 0) {
      this.walk(state, 0, this.trie.byte.length, set);
      return mask;
    }
    const local = this.local('mask', m.detach(state, ancestor), (detached, pops) => {
      const part = new Uint32Array((this.trie.tokenBytes.length + 31) >>> 5);
      this.walk(detached, 0, this.trie.byte.length, (id) => (part[id >>> 5] |= 1 << (id & 31)), pops);
      return part;
    });
    const n = Math.min(mask.length, local.value.length);
    mask.set(n === local.value.length ? local.value : local.value.subarray(0, n));
    if (local.pops.length > 0) {
      const after = m.continuation(ancestor);
      for (const node of local.pops) this.walk(after, node + 1, this.trie.end[node], set);
    }
    return mask;
  }

  /** The exact mask by a walk of the whole trie from the state itself (what `mask` must equal; for tests). */
  exactMask(state: MatchState): TokenMask {
    const mask = new Uint32Array(this.words);
    this.walk(state, 0, this.trie.byte.length, (id) => (mask[id >>> 5] |= 1 << (id & 31)));
    return mask;
  }

  private readonly costCache = new Map<string, Uint16Array>();

  /**
   * For each token, the fewest bytes that complete the output after it (NO_TOKEN when refused),
   * composed like a mask: inside the construct a token's cost is its cost in the detached state
   * (which ends at the construct's end) plus what closing the context costs; tokens that run past
   * the end are walked from the continuation. Cached per state (fewer entries: two bytes per token).
   */
  costs(state: MatchState): Uint16Array {
    return cached(this.costCache, costCacheSize(this.vocabSize), state, () => {
      const costs = new Uint16Array(this.vocabSize).fill(NO_TOKEN);
      const m = this.matcher;
      const put = (id: number, next: MatchState) => {
        const c = Math.min(NO_TOKEN - 1, m.minClose(next));
        if (c < costs[id]) costs[id] = c;
      };
      const ancestor = m.commonAncestor(state);
      if (ancestor < 0) {
        this.walk(state, 0, this.trie.byte.length, put);
        return costs;
      }
      const local = this.local('costs', m.detach(state, ancestor), (detached, pops) => {
        const part = new Uint16Array(this.trie.tokenBytes.length).fill(NO_TOKEN);
        this.walk(detached, 0, this.trie.byte.length, (id, next) => (part[id] = Math.min(NO_TOKEN - 1, m.minClose(next))), pops);
        return part;
      });
      const after = m.continuation(ancestor);
      const close = m.minClose(after);
      const part = local.value;
      const n = Math.min(costs.length, part.length);
      for (let i = 0; i < n; i++) if (part[i] !== NO_TOKEN) costs[i] = Math.min(NO_TOKEN - 1, part[i] + close);
      for (const node of local.pops) this.walk(after, node + 1, this.trie.end[node], put);
      return costs;
    });
  }

  private readonly maxCosts = new WeakMap<Uint16Array, number>();

  /** The largest closing cost of any allowed token in a cost table (computed once per table). */
  maxCost(costs: Uint16Array): number {
    let max = this.maxCosts.get(costs);
    if (max === undefined) {
      max = 0;
      for (let i = 0; i < costs.length; i++) if (costs[i] !== NO_TOKEN && costs[i] > max) max = costs[i];
      this.maxCosts.set(costs, max);
    }
    return max;
  }

  /** The exact closing costs by a walk of the whole trie from the state itself (for tests). */
  exactCosts(state: MatchState): Uint16Array {
    const costs = new Uint16Array(this.vocabSize).fill(NO_TOKEN);
    this.walk(state, 0, this.trie.byte.length, (id, next) => (costs[id] = Math.min(NO_TOKEN - 1, this.matcher.minClose(next))));
    return costs;
  }

  private readonly localCache = new Map<string, LocalPart<TokenMask | Uint16Array>>();

  /**
   * The context-free part of a mask or cost table for a detached state: cached by this grammar,
   * and by structure (`structureKey`) for every grammar on the tokenizer. `make` walks the trie
   * and lists the nodes where the detached state returns to its context with more bytes below.
   */
  private local<T extends TokenMask | Uint16Array>(kind: 'mask' | 'costs', detached: MatchState, make: (detached: MatchState, pops: number[]) => T): LocalPart<T> {
    const key = `${kind}:${ByteMatcher.key(detached)}`;
    let part = this.localCache.get(key) as LocalPart<T> | undefined;
    if (part) return part;
    const structure = this.matcher.structureKey(detached);
    const shared = sharedParts(this.trie);
    const sharedKey = structure === undefined ? undefined : `${kind}:${structure}`;
    part = sharedKey === undefined ? undefined : (shared.get(sharedKey) as LocalPart<T> | undefined);
    if (part) shared.delete(sharedKey!); // to the back
    else {
      this.localComputed++;
      const pops: number[] = [];
      const value = make(detached, pops);
      part = { value, pops: Int32Array.from(pops) };
    }
    if (sharedKey !== undefined) {
      if (shared.size >= sharedCapacity(this.trie)) shared.delete(shared.keys().next().value!);
      shared.set(sharedKey, part);
    }
    if (this.localCache.size >= LOCAL_CACHE) this.localCache.delete(this.localCache.keys().next().value!);
    this.localCache.set(key, part);
    return part;
  }

  /**
   * Depth-first over trie nodes [from, to) (a whole subtree, or the whole trie) with `state` as
   * the state above `from`: a refused prefix skips its subtree; `visit` gets every allowed token
   * with the state after it. With `pops`, nodes where the state has returned to its top (ACCEPT:
   * a detached state's return to its context) and that have nodes below are listed there.
   */
  private walk(state: MatchState, from: number, to: number, visit: (token: number, next: MatchState) => void, pops?: number[]): void {
    const { byte, depth, end, tokenStart, tokens } = this.trie;
    const ids = this.ids;
    const m = this.matcher;
    const base = from === 0 ? 0 : depth[from] - 1;
    ids[base] = m.internState(state); // may drop old ids; none is held across walks
    for (let i = from; i < to; ) {
      const next = m.stepId(ids[depth[i] - 1], byte[i]);
      if (next === REFUSED) {
        i = end[i];
        continue;
      }
      ids[depth[i]] = next;
      if (tokenStart[i] < tokenStart[i + 1] || (pops && end[i] > i + 1)) {
        const s = m.stateOf(next);
        for (let k = tokenStart[i]; k < tokenStart[i + 1]; k++) visit(tokens[k], s);
        if (pops && end[i] > i + 1 && s[0] === ACCEPT) pops.push(i);
      }
      i++;
    }
  }
}

/** The context-free part of a mask or cost table, and the trie nodes where the detached state returns to its context. */
interface LocalPart<T> {
  value: T;
  pops: Int32Array;
}

const sharedByTrie = new WeakMap<TokenTrie, Map<string, LocalPart<TokenMask | Uint16Array>>>();

/** Context-free parts by structure, shared by every grammar on one tokenizer. */
function sharedParts(trie: TokenTrie): Map<string, LocalPart<TokenMask | Uint16Array>> {
  let map = sharedByTrie.get(trie);
  if (!map) sharedByTrie.set(trie, (map = new Map()));
  return map;
}

/** About 16 MiB of shared parts per tokenizer (a cost table is two bytes per token, a mask one bit). */
const sharedCapacity = (trie: TokenTrie) => Math.max(16, Math.min(1024, Math.floor((16 << 20) / (2 * trie.tokenBytes.length + 64))));

/** A least-recently-used cache by matcher state. */
function cached<T>(cache: Map<string, T>, capacity: number, state: MatchState, make: () => T): T {
  const key = ByteMatcher.key(state);
  let value = cache.get(key);
  if (value !== undefined) cache.delete(key); // move to the back
  else {
    value = make();
    if (cache.size >= capacity) cache.delete(cache.keys().next().value!);
  }
  cache.set(key, value);
  return value;
}
