/**
 * Prompt-lookup drafts (llama.cpp's lookup decoding, vLLM's `ngram` speculative method): the last
 * few tokens of a sequence, found earlier in the same sequence, suggest that what followed them
 * there follows again. A greedy job sends those tokens as a draft behind its next token, in one
 * multi-token step, and keeps the ones the model's own argmax confirms (see SamplingJob).
 *
 * Pure functions of the token history; nothing here knows a backend.
 * @module
 */

export interface PromptLookupOptions {
  /** Most draft tokens per step (K); 0 turns drafting off. */
  maxDraft: number;
  /** Longest suffix looked up (tried first), default 3. */
  maxNgram?: number;
  /** Shortest suffix looked up, default 2. */
  minNgram?: number;
}

import { groupingChangesLogits, type BackendModelInfo } from './backend.js';

export const DEFAULT_MAX_NGRAM = 3;
export const DEFAULT_MIN_NGRAM = 2;

/**
 * The draft for what follows `history`: for n from `maxNgram` down to `minNgram`, the last n tokens
 * are looked for earlier in `history`, latest occurrence first; the first match gives up to
 * `maxDraft` of the tokens that followed it. The continuation may run into the suffix itself
 * (a repeating pattern), and then it goes on repeating what the draft has copied so far, as an
 * LZ77 copy does: "a b a b a b" drafts "a b a b ..." rather than stopping at the end of the text.
 * Empty when nothing matches (or `maxDraft` is 0).
 */
export function findDraft(history: readonly number[], options: PromptLookupOptions): number[] {
  const { maxDraft } = options;
  const len = history.length;
  if (maxDraft <= 0) return [];
  const maxN = Math.min(options.maxNgram ?? DEFAULT_MAX_NGRAM, len - 1);
  const minN = Math.max(1, options.minNgram ?? DEFAULT_MIN_NGRAM);
  for (let n = maxN; n >= minN; n--) {
    const start = lastOccurrence(history, len - n, n);
    if (start < 0) continue;
    const draft: number[] = [];
    for (let k = 0; k < maxDraft; k++) {
      const at = start + n + k;
      draft.push(at < len ? history[at] : draft[at - len]);
    }
    return draft;
  }
  return [];
}

/**
 * Whether any next token could give `history + [token]` a draft: true when the last
 * `minNgram - 1` tokens of `history` occur earlier in it (the n-gram that ends with the next token
 * begins with them), and always when single tokens are looked up. When false, the step after the
 * next is surely a plain one-token step, so the backend may start it early (`greedyNext`).
 */
export function mayDraftNext(history: readonly number[], options: PromptLookupOptions): boolean {
  if (options.maxDraft <= 0) return false;
  const minN = Math.max(1, options.minNgram ?? DEFAULT_MIN_NGRAM);
  const maxN = options.maxNgram ?? DEFAULT_MAX_NGRAM;
  if (minN > maxN) return false;
  const n = minN - 1;
  if (n === 0) return history.length > 0;
  if (history.length < n + 1) return false;
  return lastOccurrence(history, history.length - n, n) >= 0;
}

/**
 * The latest start i < `end` where history[i .. i + n) equals history[end .. end + n), or -1.
 * (Only starts before `end` count: the pattern does not match itself.)
 */
function lastOccurrence(history: readonly number[], end: number, n: number): number {
  if (n <= 0 || end <= 0) return -1;
  const first = history[end];
  outer: for (let i = end - 1; i >= 0; i--) {
    if (history[i] !== first) continue;
    for (let j = 1; j < n; j++) if (history[i + j] !== history[end + j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Why a backend's drafted steps would change greedy output, if they would. Undefined: drafting is
 * allowed.
 * - `info.rowInvariant`: the backend showed at load that a multi-token step gives the same logits,
 *   bit for bit, as the same tokens one at a time: drafts cannot change a reply, whatever the
 *   arithmetic (a request drafts only while running alone, so batch neighbours do not enter).
 * - A graph that quantizes activations per call mixes a step's positions.
 * - One that quantizes them per row in its body amplifies the float rounding by which a multi-token
 *   step differs from one-token steps (before the importer's grouped attention, on SmolLM2's Q4_1
 *   GGUF with int8 activations, 4 of 7 greedy replies changed, top-two logit margins 0.05 to 0.19).
 * - `floatBody`: the host knows that only the tied LM head computes with int8 activations (a GGUF
 *   converted exactly): its rows are quantized one by one and summed in integers, and the float
 *   body's rounding differences stay at float size (the same 7 replies kept every token).
 */
export function lookupRefusal(info: BackendModelInfo, floatBody = false): string | undefined {
  if (info.rowInvariant) return undefined;
  if (groupingChangesLogits(info)) return 'the graph quantizes activations per call, so a multi-token step would change greedy output';
  if (info.quantizedActivations && !floatBody) {
    return 'the graph computes with int8 activations, and its multi-token steps round differently from single steps, which changes greedy output';
  }
  return undefined;
}

/** Weight of the newest observation in the running averages below. */
const COST_WEIGHT = 0.1;
const YIELD_WEIGHT = 0.3;
/** Most drafting chances a request skips in a row after drafts that did not pay. */
const MAX_BACKOFF = 32;

/**
 * What a step costs on this backend, learned while serving (one per engine): the running average
 * of a one-token step's time and of a drafted step's time, for a request running alone. A drafted
 * step runs several positions at once, which costs more than one (how much depends on the kernels:
 * a 4-bit matmul on float activations costs about twice as much for 2 to 5 rows as for one on the
 * CPU, one on int8 activations grows with each row), so a draft pays only when it brings more
 * tokens than that ratio.
 */
export class DraftCosts {
  private plainMs: number | undefined;
  private draftMs: number | undefined;

  observe(drafted: boolean, ms: number): void {
    if (!(ms >= 0)) return;
    if (drafted) this.draftMs = this.draftMs === undefined ? ms : this.draftMs + COST_WEIGHT * (ms - this.draftMs);
    else this.plainMs = this.plainMs === undefined ? ms : this.plainMs + COST_WEIGHT * (ms - this.plainMs);
  }

  /**
   * A drafted step's time over a one-token step's. 1 before any drafted step (try one); infinite
   * while no one-token step has been timed, so that a request that drafts at every chance still
   * backs off once and times a one-token step (see DraftGate).
   */
  get ratio(): number {
    if (this.draftMs === undefined) return 1;
    return this.plainMs ? this.draftMs / this.plainMs : Number.POSITIVE_INFINITY;
  }
}

/**
 * One request's decision to draft: it drafts while its drafts bring (on average, recent ones
 * weighing most) at least as many tokens per step as a drafted step costs in one-token steps.
 * After a draft that did not pay it skips 1, 2, 4 ... up to 32 chances before it tries again, so a
 * text that does not repeat itself costs little, and one that starts repeating is noticed.
 */
export class DraftGate {
  /** Running average of tokens per drafted step (accepted + the model's own); optimistic at first. */
  private tokensPerDraft: number;
  private backoff = 0;
  private skipped = 0;

  constructor(maxDraft: number) {
    this.tokensPerDraft = 1 + maxDraft;
  }

  /** Whether to draft at this chance (a draft was found), given the backend's cost ratio. */
  wouldDraft(ratio: number): boolean {
    return this.tokensPerDraft >= ratio || this.skipped >= this.backoff;
  }

  /** A chance passed without drafting. */
  skip(): void {
    this.skipped++;
  }

  /** A drafted step gave `tokens` tokens (accepted drafts + 1). */
  record(tokens: number, ratio: number): void {
    this.tokensPerDraft += YIELD_WEIGHT * (tokens - this.tokensPerDraft);
    this.backoff = tokens >= ratio ? 0 : Math.min(MAX_BACKOFF, Math.max(1, 2 * this.backoff));
    this.skipped = 0;
  }
}
