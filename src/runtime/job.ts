/**
 * A job is one request inside the scheduler: it says which tokens to forward each step and
 * consumes the resulting logits. `SamplingJob` and `BeamJob` share this base.
 * @module
 */
import type { Backend, ForwardItem } from './backend.js';
import type { DraftCosts, PromptLookupOptions } from './prompt-lookup.js';
import type { CompiledConstraint } from './constraints/index.js';
import { IncrementalDetokenizer } from './detokenizer.js';
import { StopMatcher } from './stop-matcher.js';
import type { Tokenizer } from './tokenizer.js';
import type { FinishReason, GenerationEvent, SamplingParams, TokenLogprob } from './types.js';
import { applyLogitBias, applyPresenceFrequencyPenalty, applyRepetitionPenalty, suppressTokens, tokenLogprobs } from './sampling/index.js';

export interface JobSpec {
  promptTokens: number[];
  sampling: SamplingParams;
  /** Max new tokens for each choice, already capped by the context. */
  maxNewTokens: number;
  minTokens: number;
  stop: string[];
  stopTokenIds: number[];
  ignoreEos: boolean;
  n: number;
  /** Top alternatives to report with each token's logprob; undefined = no logprobs. */
  logprobs?: number;
  /** Largest prefill forwarded in one step; undefined = the whole prompt at once. */
  prefillChunk?: number;
  /** Start from a sequence whose cache already holds `cached` prompt tokens (`kvLength` >= cached tokens in all). */
  reuse?: { seq: number; cached: number; kvLength: number };
  /** What every choice's tokens must match (each choice keeps its own state). */
  constraint?: CompiledConstraint;
  /** The LoRA adapter every sequence of the job runs with (0 or absent: the base model). */
  adapter?: number;
  /**
   * Verify prompt-lookup drafts when the job runs alone (see prompt-lookup.ts). Only a pure greedy
   * request of one choice without logprobs or constraint uses it; others decode as without it.
   */
  lookup?: PromptLookupOptions;
}

export interface JobContext {
  backend: Backend;
  tokenizer: Tokenizer;
  allocSeq(): number;
  emit(event: GenerationEvent): void;
  /**
   * Called once with the final text of choice 0 (sessions record it) before `usage`, and its
   * generated tokens when the text is exactly their decoding (not when a stop string cut it).
   */
  onComplete?(text: string, reason: FinishReason, tokens?: number[]): void;
  /** Called once when the job leaves the scheduler, however it ended. */
  onDispose?(): void;
  /**
   * Offered the finished first sequence and the tokens its cache holds; returning true keeps the
   * sequence alive (the caller owns it then) instead of releasing it.
   */
  onRetain?(seq: number, tokens: number[]): boolean;
  /** A draft of `drafted` tokens was verified and `accepted` of them matched the model's own choice. */
  onDraft?(drafted: number, accepted: number): void;
  /** What drafted and plain steps cost on this backend (shared by the engine's jobs), and the clock that times them. */
  draftCosts?: DraftCosts;
  now?(): number;
}

const UTF8 = new TextEncoder();
const TEXT = new TextDecoder();

/** How many prompt tokens the detokenizer sees as context, so the first new token keeps its leading space. */
const DETOKENIZER_CONTEXT = 4;

export abstract class Job {
  done = false;
  cancelled = false;
  protected completionTokens = 0;
  protected readonly eos: Set<number>;
  /** Tokens that end a choice (EOS unless ignored, and stop ids): a constraint allows them only when complete. */
  protected readonly ends: Set<number>;

  constructor(
    protected readonly spec: JobSpec,
    protected readonly ctx: JobContext,
  ) {
    this.eos = new Set(spec.ignoreEos ? [] : ctx.tokenizer.eosTokenIds);
    this.ends = new Set([...this.eos, ...spec.stopTokenIds]);
  }

  /** The LoRA adapter of the job's sequences (0: the base model); the scheduler stamps it on each forward item. */
  get adapter(): number {
    return this.spec.adapter ?? 0;
  }

  /** Sequences this job holds at most: its n choices (BeamJob: its beams). */
  get width(): number {
    return this.spec.n;
  }

  /** This step's items; `alone`: no other job forwards in this step (see SchedulerJob.plan). */
  abstract plan(alone?: boolean): ForwardItem[];
  abstract advance(logits: Float32Array[]): Promise<void>;
  /** Every sequence this job still holds in the backend. */
  protected abstract liveSeqs(): number[];

  cancel(): void {
    this.cancelled = true;
  }

  private disposed = false;

  /** Frees the job's KV caches; safe to call more than once. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const seq of this.liveSeqs()) this.ctx.backend.release(seq);
    this.ctx.onDispose?.();
  }

  /** The first sequence's id: a reused cached sequence, or a new one. */
  protected firstSeq(): number {
    return this.spec.reuse?.seq ?? this.ctx.allocSeq();
  }

  /** Prompt tokens already planned for the cache (a reused prefix counts from the start). */
  private prefilledTo = -1;

  /** Whether the whole prompt has been planned; the logits of the last prefill chunk are the first real ones. */
  protected get prefillPlanned(): boolean {
    return this.prefilledTo >= this.spec.promptTokens.length;
  }

  /**
   * The next prefill chunk: prompt tokens not yet cached, at most `prefillChunk` of them, so a long
   * prompt shares the steps with the other sequences' decodes. The first chunk trims a reused
   * cache to the part that matches.
   */
  protected prefillItem(seq: number): ForwardItem {
    const reuse = this.spec.reuse;
    const first = this.prefilledTo < 0;
    if (first) this.prefilledTo = reuse?.cached ?? 0;
    const from = this.prefilledTo;
    this.prefilledTo = Math.min(this.spec.promptTokens.length, from + (this.spec.prefillChunk ?? Number.POSITIVE_INFINITY));
    const item: ForwardItem = { seq, tokens: this.spec.promptTokens.slice(from, this.prefilledTo) };
    if (first && reuse && reuse.kvLength > reuse.cached) item.source = { seq, length: reuse.cached };
    return item;
  }

  protected newDetokenizer(): IncrementalDetokenizer {
    const context = this.spec.promptTokens.slice(-DETOKENIZER_CONTEXT);
    return new IncrementalDetokenizer((ids) => this.ctx.tokenizer.decode(ids), context);
  }

  protected newStopMatcher(): StopMatcher {
    return new StopMatcher(this.spec.stop);
  }

  private uniquePrompt: number[] | undefined;

  /**
   * Penalties and biases, in place, in the order Hugging Face and vLLM apply them. `counts` holds
   * the generated tokens; the prompt's distinct ids are collected once, not on every step.
   */
  protected processLogits(logits: Float32Array, generatedCount: number, counts: Map<number, number>): void {
    const s = this.spec.sampling;
    if (s.repetitionPenalty !== 1) {
      this.uniquePrompt ??= [...new Set(this.spec.promptTokens)];
      // applyRepetitionPenalty skips ids it has already seen, so the overlap is penalised once.
      applyRepetitionPenalty(logits, [...this.uniquePrompt, ...counts.keys()], s.repetitionPenalty);
    }
    if (s.presencePenalty !== 0 || s.frequencyPenalty !== 0) {
      applyPresenceFrequencyPenalty(logits, counts, s.presencePenalty, s.frequencyPenalty);
    }
    if (s.logitBias) applyLogitBias(logits, s.logitBias);
    if (generatedCount < this.spec.minTokens) suppressTokens(logits, [...this.ctx.tokenizer.eosTokenIds, ...this.spec.stopTokenIds]);
  }

  /**
   * The chosen token's logprob and the top alternatives, from the unprocessed logits. `text` is
   * what the chosen token added to the choice's text; alternatives were not chosen, so theirs is
   * their own bytes as UTF-8.
   */
  protected logprobOf(raw: Float32Array, token: number, text: string): TokenLogprob {
    const { logprob, top } = tokenLogprobs(raw, token, this.spec.logprobs ?? 0);
    const bytes = this.bytesOf(token);
    return { token, text, bytes, logprob, top: top.map((t) => ({ ...t, ...this.pieceOf(t.token) })) };
  }

  /** A token's bytes from the tokenizer's byte table, else the UTF-8 of its lone decoding. */
  private bytesOf(token: number): number[] {
    const table = this.ctx.tokenizer.tokenBytes?.();
    if (table) return Array.from(table[token] ?? []);
    return Array.from(UTF8.encode(this.ctx.tokenizer.decode([token])));
  }

  private pieceOf(token: number): { text: string; bytes: number[] } {
    const bytes = this.bytesOf(token);
    return { text: TEXT.decode(new Uint8Array(bytes)), bytes };
  }

  protected isStopToken(token: number): boolean {
    return this.eos.has(token) || this.spec.stopTokenIds.includes(token);
  }

  protected finishJob(): void {
    this.done = true;
    this.ctx.emit({ type: 'usage', promptTokens: this.spec.promptTokens.length, completionTokens: this.completionTokens });
  }
}
