/**
 * Beam search (`num_beams > 1`). Each live beam is a backend sequence; after every step the
 * beams are re-formed from their parents, reusing a parent's KV cache for its first child and
 * forking it for the others. The text is only known at the end, so it is emitted in one delta.
 * @module
 */
import type { ForwardItem } from './backend.js';
import type { ConstraintState } from './constraints/index.js';
import { Job, type JobContext, type JobSpec } from './job.js';
import { BeamSearch } from './sampling/index.js';

export class BeamJob extends Job {
  private readonly search: BeamSearch;
  private seqs: number[];
  private pending: number[] | undefined;
  /** Each live beam's constraint state, parallel to the search's beams. */
  private states: Array<ConstraintState | undefined>;

  constructor(spec: JobSpec, ctx: JobContext) {
    super(spec, ctx);
    this.search = new BeamSearch({
      numBeams: spec.sampling.numBeams,
      eosTokenIds: [...this.eos, ...spec.stopTokenIds],
      lengthPenalty: spec.sampling.lengthPenalty,
      maxNewTokens: spec.maxNewTokens,
      ignoreEos: spec.ignoreEos && spec.stopTokenIds.length === 0,
      minNewTokens: spec.minTokens,
    });
    this.seqs = [this.firstSeq()];
    this.states = [spec.constraint?.start()];
  }

  override get width(): number {
    return this.spec.sampling.numBeams;
  }

  plan(): ForwardItem[] {
    if (!this.prefillPlanned) return [this.prefillItem(this.seqs[0])];
    return this.seqs.map((seq, i) => ({ seq, tokens: [this.pending![i]] }));
  }

  async advance(logits: Float32Array[]): Promise<void> {
    if (!this.pending && !this.prefillPlanned) return; // a middle chunk of a long prompt
    const counts = new Map<number, number>();
    this.search.beams.forEach((beam, i) => {
      counts.clear();
      for (const t of beam.tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
      this.processLogits(logits[i], beam.tokens.length, counts);
      // Beams rank whole candidate lists, so a constrained beam needs its full mask.
      const state = this.states[i];
      const budget = this.spec.maxNewTokens - beam.tokens.length - 1;
      state?.maskLogits(logits[i], this.ends, budget);
    });
    const choices = this.search.step(logits);
    if (this.search.done || choices.length === 0) return this.complete();
    this.states = choices.map((c) => this.states[c.parent]?.next(c.token));

    const used = new Set<number>();
    const next: number[] = [];
    for (const { parent } of choices) {
      const parentSeq = this.seqs[parent];
      if (!used.has(parent)) {
        used.add(parent);
        next.push(parentSeq);
      } else {
        const child = this.ctx.allocSeq();
        await this.ctx.backend.fork(parentSeq, child);
        next.push(child);
      }
    }
    this.seqs.forEach((seq, i) => used.has(i) || this.ctx.backend.release(seq));
    this.seqs = next;
    this.pending = choices.map((c) => c.token);
  }

  protected liveSeqs(): number[] {
    return this.seqs;
  }

  private complete(): void {
    const best = this.search.best();
    this.completionTokens = best.tokens.length;
    const detokenizer = this.newDetokenizer();
    const stopper = this.newStopMatcher();
    const out = stopper.push(detokenizer.push(best.tokens) + detokenizer.flush());
    const text = out.stopped ? out.text : out.text + stopper.flush();
    // As in sampling: a constrained output complete at the token limit was closed by the budget, so it stops.
    const closed = best.finishReason === 'length' && this.spec.constraint !== undefined && completeAfter(this.spec.constraint.start(), best.tokens);
    const reason = out.stopped || closed ? 'stop' : best.finishReason;
    this.ctx.emit({ type: 'delta', index: 0, text, tokens: best.tokens });
    this.ctx.emit({ type: 'finish', index: 0, reason });
    this.ctx.onComplete?.(text, reason, out.stopped ? undefined : best.tokens);
    this.finishJob();
  }
}

function completeAfter(state: ConstraintState, tokens: number[]): boolean {
  for (const t of tokens) state = state.next(t);
  return state.complete;
}
