/**
 * Sampling (greedy, temperature, top-k/p, min-p) for n independent choices of one prompt.
 * The prompt is prefilled once; the other choices fork its KV cache.
 * @module
 */
import type { ForwardItem } from './backend.js';
import { sampleConstrained, type ConstraintState } from './constraints/index.js';
import type { IncrementalDetokenizer } from './detokenizer.js';
import { Job, type JobContext, type JobSpec } from './job.js';
import { DraftCosts, DraftGate, findDraft, mayDraftNext, type PromptLookupOptions } from './prompt-lookup.js';
import { createRng, sampleToken, type Rng } from './sampling/index.js';
import type { StopMatcher } from './stop-matcher.js';
import type { FinishReason, TokenLogprob } from './types.js';

interface Choice {
  index: number;
  seq: number;
  tokens: number[];
  counts: Map<number, number>;
  rng: Rng;
  detokenizer: IncrementalDetokenizer;
  stopper: StopMatcher;
  text: string;
  finished: boolean;
  reason: FinishReason;
  /** A stop string cut the text, so it is no longer the decoding of `tokens`. */
  cut: boolean;
  /** How many of `tokens` are in the sequence's KV cache (the last sampled one is not, yet). */
  inCache: number;
  /**
   * Tokens the KV cache holds after the first `inCache` of `tokens`: the rejected part of a verified
   * draft (or what followed a stop inside it), dropped by the next step's `source`.
   */
  kvTail: number[];
  /** The draft sent behind the last token in this step, verified when its logits come. */
  draft?: number[];
  /** Where this choice stands in the request's constraint, if any. */
  constraint?: ConstraintState;
}

export class SamplingJob extends Job {
  private readonly choices: Choice[];
  private prefilled = false;
  private retained = false;
  /** Greedy with nothing that changes the logits before the argmax (min_tokens aside). */
  private readonly pureGreedy: boolean;
  /** Prompt lookup, when this request may use it: pure greedy, one choice, no logprobs, no constraint. */
  private readonly lookup: PromptLookupOptions | undefined;
  private readonly gate: DraftGate | undefined;
  private readonly costs: DraftCosts;
  /** The step in flight, timed for `costs` when the job runs alone: a drafted or a one-token step, and its start. */
  private timing: { drafted: boolean; start: number } | undefined;

  constructor(spec: JobSpec, ctx: JobContext) {
    super(spec, ctx);
    const s = spec.sampling;
    this.pureGreedy =
      !(s.temperature > 0) &&
      s.repetitionPenalty === 1 &&
      s.presencePenalty === 0 &&
      s.frequencyPenalty === 0 &&
      Object.keys(s.logitBias ?? {}).length === 0;
    const lookup = spec.lookup;
    const exact = this.pureGreedy && spec.n === 1 && spec.logprobs === undefined && !spec.constraint;
    this.lookup = lookup && lookup.maxDraft > 0 && exact ? lookup : undefined;
    this.gate = this.lookup && new DraftGate(this.lookup.maxDraft);
    this.costs = ctx.draftCosts ?? new DraftCosts();
    const seed = spec.sampling.seed;
    this.choices = Array.from({ length: spec.n }, (_, index) => ({
      index,
      seq: index === 0 ? this.firstSeq() : ctx.allocSeq(),
      tokens: [],
      counts: new Map(),
      // Distinct streams per choice, still reproducible for a given seed.
      rng: createRng(seed === undefined ? undefined : seed + index * 0x9e3779b1),
      detokenizer: this.newDetokenizer(),
      stopper: this.newStopMatcher(),
      text: '',
      finished: false,
      reason: 'stop',
      cut: false,
      inCache: 0,
      kvTail: [],
      constraint: spec.constraint?.start(),
    }));
  }

  plan(alone = false): ForwardItem[] {
    if (!this.prefillPlanned) return [this.prefillItem(this.choices[0].seq)];
    this.timing = undefined;
    return this.active().map((c) => {
      const last = c.tokens[c.tokens.length - 1];
      const source = this.dropTail(c);
      let greedyNext = this.greedyNext(c);
      if (this.lookup && this.gate && alone) {
        const history = [...this.spec.promptTokens, ...c.tokens];
        // Room for the draft: the step gives up to draft + 1 tokens, within max_tokens.
        const room = this.spec.maxNewTokens - c.tokens.length - 1;
        const draft = room > 0 ? findDraft(history, { ...this.lookup, maxDraft: Math.min(this.lookup.maxDraft, room) }) : [];
        const ratio = this.costs.ratio;
        if (draft.length > 0 && this.gate.wouldDraft(ratio)) {
          c.draft = draft;
          this.time(true);
          return { seq: c.seq, tokens: [last, ...draft], allLogits: true, ...(source && { source }) };
        }
        if (draft.length > 0) this.gate.skip();
        // A step that drops draft positions costs more than a plain one: it is not what a plain step costs.
        if (!source) this.time(false);
        // A step started early would be wasted if the next one brings a draft (that is another step).
        if (room - 1 > 0 && this.gate.wouldDraft(ratio) && mayDraftNext(history, this.lookup)) greedyNext = false;
      }
      // a constrained row promises the argmax among what its constraint allows next (not near max_tokens)
      const greedyAmong = greedyNext && c.constraint ? c.constraint.greedyAmong(this.ends, this.spec.maxNewTokens - c.tokens.length - 1) : undefined;
      if (c.constraint && !greedyAmong) greedyNext = false;
      return { seq: c.seq, tokens: [last], greedyNext, ...(greedyAmong && { greedyAmong }), ...(source && { source }) };
    });
  }

  private time(drafted: boolean): void {
    if (this.ctx.now) this.timing = { drafted, start: this.ctx.now() };
  }

  /** The `source` that drops what the cache holds beyond the choice's tokens (a draft's rejected part), if any. */
  private dropTail(c: Choice): { seq: number; length: number } | undefined {
    if (c.kvTail.length === 0) return undefined;
    c.kvTail = [];
    return { seq: c.seq, length: this.spec.promptTokens.length + c.inCache };
  }

  /**
   * Whether the token after this step will be the logits' argmax (for a constrained choice, the
   * argmax among the tokens its constraint allows, see `greedyAmong`), and this step not the last.
   */
  private greedyNext(choice: Choice): boolean {
    const generated = choice.tokens.length;
    return this.pureGreedy && generated >= this.spec.minTokens && generated + 1 < this.spec.maxNewTokens && !choice.constraint?.mustEnd;
  }

  async advance(logits: Float32Array[]): Promise<void> {
    if (this.timing && this.ctx.now) this.costs.observe(this.timing.drafted, this.ctx.now() - this.timing.start);
    this.timing = undefined;
    let rows = logits;
    if (!this.prefilled) {
      if (!this.prefillPlanned) return; // a middle chunk of a long prompt: its logits are not needed
      this.prefilled = true;
      for (const c of this.choices.slice(1)) await this.ctx.backend.fork(this.choices[0].seq, c.seq);
      rows = this.choices.map((_, i) => (i === 0 ? logits[0] : logits[0].slice()));
    }
    this.active().forEach((choice, i) => (choice.draft ? this.verify(choice, rows[i]) : this.step(choice, rows[i])));
    if (this.active().length === 0) {
      const first = this.choices[0];
      this.ctx.onComplete?.(first.text, first.reason, first.cut ? undefined : first.tokens);
      const cached = [...this.spec.promptTokens, ...first.tokens.slice(0, first.inCache), ...first.kvTail];
      this.retained = this.ctx.onRetain?.(first.seq, cached) ?? false;
      this.finishJob();
    }
  }

  protected liveSeqs(): number[] {
    return this.choices.filter((c, i) => i > 0 || !this.retained).map((c) => c.seq);
  }

  private active(): Choice[] {
    return this.choices.filter((c) => !c.finished);
  }

  /**
   * A drafted step's logits: row i follows the step's i-th token (the last one, then the draft).
   * Each row is a plain step in turn (sampling, stop strings, limits, deltas as one token at a
   * time), and the rows go on while the token chosen equals the draft's next one: the first row
   * that disagrees gives its own token, as plain decoding would. The cache keeps the rejected
   * positions until the next step's `source` drops them.
   */
  private verify(choice: Choice, logits: Float32Array): void {
    const draft = choice.draft!;
    choice.draft = undefined;
    const vocab = logits.length / (draft.length + 1);
    let accepted = 0;
    let row = 0;
    for (; row <= draft.length; row++) {
      const before = choice.tokens.length;
      this.step(choice, logits.subarray(row * vocab, (row + 1) * vocab));
      const agreed = row < draft.length && choice.tokens.length > before && choice.tokens[before] === draft[row];
      if (agreed) accepted++;
      if (!agreed || choice.finished) break;
    }
    choice.kvTail = draft.slice(row);
    this.gate?.record(accepted + 1, this.costs.ratio);
    this.ctx.onDraft?.(draft.length, accepted);
  }

  private step(choice: Choice, logits: Float32Array): void {
    choice.inCache = choice.tokens.length;
    const raw = this.spec.logprobs === undefined ? undefined : logits.slice();
    this.processLogits(logits, choice.tokens.length, choice.counts);
    let token: number;
    if (choice.constraint) {
      // The constraint is complete and nothing may follow, or no token can continue it: the choice ends here.
      // Tokens left after this one: near max_tokens only tokens that can still close the output in time are allowed.
      const budget = this.spec.maxNewTokens - choice.tokens.length - 1;
      const t = choice.constraint.mustEnd ? undefined : sampleConstrained(logits, this.spec.sampling, choice.rng, choice.constraint, this.ends, budget);
      if (t === undefined) return this.finish(choice, this.release(choice).text, 'stop', []);
      token = t;
    } else token = sampleToken(logits, this.spec.sampling, choice.rng);
    if (this.isStopToken(token)) return this.finish(choice, this.release(choice).text, 'stop', []);

    choice.constraint = choice.constraint?.next(token);
    choice.tokens.push(token);
    choice.counts.set(token, (choice.counts.get(token) ?? 0) + 1);
    this.completionTokens++;
    // The last token also gets what the detokenizer held back (an unfinished character).
    // A constrained output ends complete when nothing may follow, or when it is complete at the token limit:
    // the budget (see sampleConstrained) closed it there, so it stops rather than being cut.
    const atLimit = choice.tokens.length >= this.spec.maxNewTokens;
    const complete = choice.constraint !== undefined && (choice.constraint.mustEnd || (atLimit && choice.constraint.complete));
    const last = complete || atLimit;
    const piece = choice.detokenizer.push([token]) + (last ? choice.detokenizer.flush() : '');
    const logprobs = raw && [this.logprobOf(raw, token, piece)];
    const out = choice.stopper.push(piece);
    choice.cut = out.stopped;
    if (out.stopped) return this.finish(choice, out.text, 'stop', [token], logprobs);
    if (last) {
      const end = this.release(choice);
      return this.finish(choice, out.text + end.text, end.stopped || complete ? 'stop' : 'length', [token], logprobs);
    }
    choice.text += out.text;
    this.ctx.emit({ type: 'delta', index: choice.index, text: out.text, tokens: [token], ...(logprobs && { logprobs }) });
  }

  /** The choice ends: release what the detokenizer and the stop matcher still hold back. */
  private release(choice: Choice): { text: string; stopped: boolean } {
    const out = choice.stopper.push(choice.detokenizer.flush());
    choice.cut = out.stopped;
    return out.stopped ? out : { text: out.text + choice.stopper.flush(), stopped: false };
  }

  private finish(choice: Choice, text: string, reason: FinishReason, tokens: number[], logprobs?: TokenLogprob[]): void {
    choice.finished = true;
    choice.reason = reason;
    choice.text += text;
    if (text || tokens.length) this.ctx.emit({ type: 'delta', index: choice.index, text, tokens, ...(logprobs && { logprobs }) });
    this.ctx.emit({ type: 'finish', index: choice.index, reason });
  }
}
