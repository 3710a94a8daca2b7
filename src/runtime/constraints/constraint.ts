/**
 * Constraints as the engine uses them: a spec (see `ConstraintSpec` in the runtime types) compiled
 * once per tokenizer into a matcher and a masker, and a small immutable per-row state that says
 * which tokens may come next. Sampling checks the sampled token first and masks the whole
 * vocabulary only when that token is refused (see `sampleConstrained`).
 * @module
 */
import type { ConstraintSpec } from '../types.js';
import { sampleToken, type Rng, type SampleParams } from '../sampling/index.js';
import { grammarOf } from './spec.js';
import { flattenGrammar } from './grammar.js';
import { ByteMatcher, type MatchState } from './matcher.js';
import { maskHas, tokenTrie, TokenMasker, type TokenTrie } from './token-index.js';

export class CompiledConstraint {
  readonly matcher: ByteMatcher;
  readonly masker: TokenMasker;

  constructor(spec: ConstraintSpec, tokenBytes: ReadonlyArray<Uint8Array | null>, vocabSize: number) {
    this.matcher = new ByteMatcher(flattenGrammar(grammarOf(spec)));
    this.masker = new TokenMasker(this.matcher, tokenTrie(tokenBytes), vocabSize);
  }

  start(): ConstraintState {
    return new ConstraintState(this, this.matcher.initial);
  }

  private readonly plans = new Map<string, ClosePlan>();

  /**
   * How to close the output from `state` in tokens: the fewest-byte completion (the smallest byte
   * where several tie), split greedily into the longest tokens. Taking the plan's first token
   * leaves a state whose plan is the rest of this one (the walk and the split are deterministic),
   * one token shorter: so a row that fits its plan within the tokens left can always close in time,
   * whatever the byte count. Infinity when some byte has no token.
   */
  closePlan(state: MatchState): ClosePlan {
    const key = ByteMatcher.key(state);
    let plan = this.plans.get(key);
    if (plan) return plan;
    const m = this.matcher;
    const bytes: number[] = [];
    let s = state;
    for (let need = m.minClose(s); need > 0 && need !== Infinity; need--) {
      let found = false;
      for (let b = 0; b < 256 && !found; b++) {
        const next = m.step(s, b);
        if (next.length > 0 && m.minClose(next) === need - 1) {
          bytes.push(b);
          s = next;
          found = true;
        }
      }
      if (!found) break;
    }
    plan = m.minClose(state) === bytes.length ? splitLongest(this.masker.trie, bytes) : { tokens: Infinity, first: -1 };
    if (this.plans.size >= 4096) this.plans.clear();
    this.plans.set(key, plan);
    return plan;
  }
}

/** A way to close an output: how many tokens, and the first of them (-1 when none is needed or possible). */
export interface ClosePlan {
  tokens: number;
  first: number;
}

/** `bytes` split into tokens left to right, each the longest token that matches there. */
function splitLongest(trie: TokenTrie, bytes: number[]): ClosePlan {
  const { byte, depth, end, tokenStart, tokens } = trie;
  let count = 0;
  let first = -1;
  for (let pos = 0; pos < bytes.length; ) {
    // Walk down the trie along bytes[pos...], remembering the deepest node where a token ends.
    let best = -1;
    let bestLength = 0;
    let i = 0;
    let stop = byte.length;
    for (let d = 1; pos + d - 1 < bytes.length; d++) {
      while (i < stop && !(depth[i] === d && byte[i] === bytes[pos + d - 1])) i = depth[i] === d ? end[i] : i + 1;
      if (i >= stop) break;
      if (tokenStart[i] < tokenStart[i + 1]) {
        best = tokens[tokenStart[i]];
        bestLength = d;
      }
      stop = end[i];
      i++;
    }
    if (best < 0) return { tokens: Infinity, first: -1 };
    if (count === 0) first = best;
    count++;
    pos += bestLength;
  }
  return { tokens: count, first };
}

/** Where one row stands in its constraint. Immutable: `next` returns a new state (beams share parents). */
export class ConstraintState {
  constructor(
    private readonly c: CompiledConstraint,
    readonly state: MatchState,
  ) {}

  /** The output so far is complete: end-of-sequence is allowed. */
  get complete(): boolean {
    return this.c.matcher.accepts(this.state);
  }

  /** Complete, and nothing may follow: the row should finish now. */
  get mustEnd(): boolean {
    return this.c.matcher.onlyEnd(this.state);
  }

  /** Fewest bytes that complete the output from here (0 when complete). */
  get minClose(): number {
    return this.c.matcher.minClose(this.state);
  }

  /**
   * Whether `token` may come next; `ends` (EOS and stop ids) are allowed exactly when complete.
   * With a `budget` (tokens left after this one), a token is refused when the output could no
   * longer be completed within it, at one token per byte (byte-level and byte-fallback
   * vocabularies have a token for every byte).
   */
  allows(token: number, ends: ReadonlySet<number>, budget = Infinity): boolean {
    if (ends.has(token)) return this.complete;
    const bytes = this.c.masker.trie.tokenBytes[token];
    if (!bytes || bytes.length === 0) return false;
    const next = this.c.matcher.stepBytes(this.state, bytes);
    if (next.length === 0 || budget === Infinity) return next.length > 0;
    // A byte per token is the safe bound; multi-byte tokens (the plan) close in fewer.
    return this.c.matcher.minClose(next) <= budget || this.c.closePlan(next).tokens <= budget;
  }

  /** The token that closes the output fastest from here: an end token when complete, else the plan's first. */
  closingToken(ends: ReadonlySet<number>): number | undefined {
    if (this.complete) return ends.values().next().value;
    const { first } = this.c.closePlan(this.state);
    return first >= 0 ? first : undefined;
  }

  /** Whether the budget can constrain this step at all: entering rules can add at most this many bytes per token. */
  budgetBinds(budget: number): boolean {
    if (budget === Infinity) return false;
    const growth = this.c.masker.trie.maxDepth * (this.c.matcher.maxRuleMin + 1);
    return budget < this.minClose + growth;
  }

  /**
   * Sets every refused token's logit to -Infinity, and with a binding budget every token that
   * could not close the output a byte per token. Returns false when no token can, so only the
   * constraint's mask was applied (see `sampleConstrained` for what comes next).
   */
  maskLogits(logits: Float32Array, ends: ReadonlySet<number>, budget = Infinity): boolean {
    if (!this.budgetBinds(budget)) {
      this.applyMask(logits, ends);
      return true;
    }
    const costs = this.c.masker.costs(this.state);
    const complete = this.complete;
    const V = logits.length;
    const n = Math.min(V, costs.length);
    let any = complete && [...ends].some((e) => e < V && logits[e] !== -Infinity);
    for (let i = 0; i < n && !any; i++) any = costs[i] <= budget && logits[i] !== -Infinity;
    // Out of reach a byte per token: only the constraint's mask here (the caller then checks tokens against the plan).
    if (!any) {
      this.applyMask(logits, ends);
      return false;
    }
    const kept = complete ? [...ends].filter((e) => e < V).map((e) => [e, logits[e]] as const) : [];
    for (let i = 0; i < n; i++) if (costs[i] > budget) logits[i] = -Infinity;
    logits.fill(-Infinity, n);
    for (const [e, v] of kept) logits[e] = v;
    return true;
  }

  /**
   * Whether the budget is out of reach (then it is not applied and the output is cut): this token
   * and `budget` more cannot close it, neither a byte per token nor by the closing plan's tokens.
   */
  hopeless(budget: number): boolean {
    return budget !== Infinity && this.minClose > budget + 1 && this.c.closePlan(this.state).tokens > budget + 1;
  }

  private applyMask(logits: Float32Array, ends: ReadonlySet<number>): void {
    const mask = this.c.masker.mask(this.state);
    const complete = this.complete;
    const kept: Array<[number, number]> = [];
    if (complete) for (const e of ends) if (e < logits.length) kept.push([e, logits[e]]);
    const V = logits.length;
    for (let w = 0; w * 32 < V; w++) {
      const bits = w < mask.length ? mask[w] : 0;
      if (bits === 0xffffffff) continue;
      const top = Math.min(V, w * 32 + 32);
      if (bits === 0) logits.fill(-Infinity, w * 32, top);
      else for (let i = w * 32; i < top; i++) if (((bits >>> (i & 31)) & 1) === 0) logits[i] = -Infinity;
    }
    for (const [e, v] of kept) logits[e] = v;
  }

  /** The state after `token` (an end token leaves it unchanged). */
  next(token: number): ConstraintState {
    const bytes = this.c.masker.trie.tokenBytes[token];
    if (!bytes) return this;
    return new ConstraintState(this.c, this.c.matcher.stepBytes(this.state, bytes));
  }

  /**
   * The tokens greedy decoding picks the next token among (its argmax among them, ties to the
   * lowest id, is what `sampleConstrained` returns when greedy), as a bitset: the mask, with the
   * end tokens when the output is complete; or undefined near max_tokens, where `budget` (tokens
   * left after the next one) may refuse some allowed token, so no such promise is made. The backend
   * starts the next step with that argmax (`ForwardItem.greedyAmong`). Read only: it may be the
   * cached mask itself.
   */
  greedyAmong(ends: ReadonlySet<number>, budget = Infinity): Uint32Array | undefined {
    const mask = this.c.masker.mask(this.state);
    // every allowed token leaves at most `budget` bytes to close, one token per byte: none is refused
    if (!this.hopeless(budget) && this.budgetBinds(budget) && this.c.masker.maxCost(this.c.masker.costs(this.state)) > budget) return undefined;
    if (!this.complete || ends.size === 0) return mask;
    const withEnds = mask.slice();
    for (const e of ends) if (e >>> 5 < withEnds.length) withEnds[e >>> 5] |= 1 << (e & 31);
    return withEnds;
  }

  /** Whether a token is in the full mask (for tests). */
  inMask(token: number): boolean {
    return maskHas(this.c.masker.mask(this.state), token);
  }
}

/**
 * Samples a token the constraint allows, or returns undefined when it allows none. Without top-k,
 * top-p and min-p (or when greedy), the token sampled from the unmasked distribution is kept when
 * allowed, and only a refusal costs a full mask: that is exact, since an allowed token then comes
 * out with probability p(t) + (1 - A) p(t) / A = p(t) / A, its probability under the mask (A the
 * allowed mass). With a truncating filter, the filter must see the masked distribution, so the
 * mask comes first. `budget` is the number of tokens left after this one (see `allows`).
 */
export function sampleConstrained(
  logits: Float32Array,
  params: SampleParams,
  rng: Rng,
  constraint: ConstraintState,
  ends: ReadonlySet<number>,
  budget = Infinity,
): number | undefined {
  // Out of reach already (max_tokens below the shortest valid output): generate until cut, as without a budget.
  if (constraint.hopeless(budget)) budget = Infinity;
  const filtered = params.temperature > 0 && (params.topK > 0 || params.topP < 1 || params.minP > 0);
  if (!filtered) {
    const t = trySample(logits, params, rng);
    if (t !== undefined && constraint.allows(t, ends, budget)) return t;
  }
  constraint.maskLogits(logits, ends);
  if (!constraint.budgetBinds(budget)) return trySample(logits, params, rng);
  // Far from max_tokens the masked draw nearly always fits the budget: only a misfit pays for the
  // table of closing costs, and the redraw is from the masked distribution restricted to what fits.
  const t = trySample(logits, params, rng);
  if (t === undefined || constraint.allows(t, ends, budget)) return t;
  if (constraint.maskLogits(logits, ends, budget)) return trySample(logits, params, rng);
  // Nothing closes a byte per token (a 49k vocabulary writes "ingredients" in one token, not 11):
  // a few draws checked against the closing plan, then the plan's own next token, which always fits.
  for (let tries = 0; tries < 8; tries++) {
    const d = trySample(logits, params, rng);
    if (d === undefined) break;
    if (constraint.allows(d, ends, budget)) return d;
    logits[d] = -Infinity;
  }
  return constraint.closingToken(ends);
}

/** A sampled token, or undefined when every logit is -Infinity (the mask left nothing). */
function trySample(logits: Float32Array, params: SampleParams, rng: Rng): number | undefined {
  try {
    return sampleToken(logits, params, rng);
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

/**
 * Computes, once per tokenizer, the context-free parts of the masks and closing costs inside a
 * JSON string (any character, and after a backslash): every JSON Schema, JSON object and tool
 * call grammar has the same string body, and finds them by structure (see `TokenMasker`), so
 * the first string of a new schema costs what its hundredth does.
 */
export function primeJsonStrings(tokenBytes: ReadonlyArray<Uint8Array | null>, vocabSize: number): void {
  const c = new CompiledConstraint({ kind: 'json' }, tokenBytes, vocabSize);
  const m = c.matcher;
  for (const text of ['{"a', '{"a\\']) {
    const state = m.stepBytes(m.initial, new TextEncoder().encode(text));
    c.masker.mask(state);
    c.masker.costs(state);
  }
}

/** Compiled constraints by spec, for one tokenizer; the least recently used go first. */
export class ConstraintCache {
  private readonly entries = new Map<string, CompiledConstraint>();
  private primed = false;

  constructor(
    private readonly tokenBytes: () => ReadonlyArray<Uint8Array | null>,
    private readonly vocabSize: number,
    private readonly capacity = 32,
  ) {}

  get(spec: ConstraintSpec): CompiledConstraint {
    const key = JSON.stringify(spec);
    let c = this.entries.get(key);
    if (c) this.entries.delete(key);
    else {
      const tokenBytes = this.tokenBytes();
      if (!this.primed) {
        this.primed = true;
        primeJsonStrings(tokenBytes, this.vocabSize);
      }
      c = new CompiledConstraint(spec, tokenBytes, this.vocabSize);
      if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, c);
    return c;
  }
}
