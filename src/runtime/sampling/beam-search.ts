/**
 * Hugging Face-style beam search (`BeamSearchScorer`, early_stopping=false) as a state machine:
 * the engine runs the model on `beams`, hands the logits to `step`, and forks each new beam's
 * KV cache from the parent `step` names.
 * @module
 */

import { logSumExp, topIndices } from './logprobs.js';

export interface BeamSearchOptions {
  numBeams: number;
  eosTokenIds: number[];
  lengthPenalty: number;
  maxNewTokens: number;
  ignoreEos?: boolean;
  minNewTokens?: number;
}

export interface BeamChoice {
  parent: number;
  token: number;
}

interface Beam {
  tokens: number[];
  /** Cumulative logprob. */
  score: number;
}

interface Hypothesis {
  tokens: number[];
  /** Length-normalised score. */
  score: number;
  finishReason: 'stop' | 'length';
}

export class BeamSearch {
  readonly #o: BeamSearchOptions;
  readonly #eos: Set<number>;
  #beams: Beam[] = [{ tokens: [], score: 0 }];
  #hyps: Hypothesis[] = [];
  #worst = Infinity;
  #done: boolean;

  constructor(options: BeamSearchOptions) {
    if (!(Number.isInteger(options.numBeams) && options.numBeams >= 1)) {
      throw new RangeError(`BeamSearch: numBeams must be a positive integer, got ${options.numBeams}`);
    }
    this.#o = options;
    this.#eos = new Set(options.eosTokenIds);
    this.#done = !(options.maxNewTokens > 0);
  }

  /** Live beams: generated tokens so far and cumulative logprob, best first. Starts as one empty beam. */
  get beams(): ReadonlyArray<{ tokens: readonly number[]; score: number }> {
    return this.#beams;
  }

  get done(): boolean {
    return this.#done;
  }

  /**
   * `logits[i]` are the next-token logits of `beams[i]`. Returns each next beam's parent index in
   * the current beams and the token appended, best first; empty once the search is over (check
   * `done`), including on the step that ends it, so no further forward pass is needed.
   */
  step(logits: Float32Array[]): BeamChoice[] {
    if (this.#done) return [];
    const beams = this.#beams;
    if (logits.length !== beams.length) {
      throw new RangeError(`BeamSearch.step: ${logits.length} logit rows for ${beams.length} beams`);
    }
    const nb = this.#o.numBeams;
    const len = beams[0].tokens.length + 1; // generated length once this step's token is appended
    const eosOk = !this.#o.ignoreEos && len - 1 >= (this.#o.minNewTokens ?? 0);
    // As HF: enough candidates that numBeams non-EOS continuations survive even if every EOS ranks high.
    const keep = Math.max(2, 1 + this.#eos.size) * nb;
    const cands: Array<{ score: number; beam: number; token: number }> = [];
    for (let b = 0; b < beams.length; b++) {
      const row = logits[b];
      const lse = logSumExp(row);
      if (!Number.isFinite(lse)) continue;
      for (const t of topIndices(row, eosOk ? keep : keep + this.#eos.size)) {
        if (!eosOk && this.#eos.has(t)) continue;
        cands.push({ score: beams[b].score + (row[t] - lse), beam: b, token: t });
      }
    }
    // Ties go to the lower flattened (beam, token) index, so results do not depend on sort stability.
    cands.sort((a, b) => b.score - a.score || a.beam - b.beam || a.token - b.token);

    const next: Beam[] = [];
    const choices: BeamChoice[] = [];
    for (let r = 0; r < cands.length && r < keep && next.length < nb; r++) {
      const c = cands[r];
      const parent = beams[c.beam];
      if (this.#eos.has(c.token)) {
        // An EOS ranked below numBeams is dropped: numBeams better continuations exist.
        if (r < nb) this.#add(parent.tokens.slice(), c.score, len, 'stop');
      } else {
        next.push({ tokens: [...parent.tokens, c.token], score: c.score });
        choices.push({ parent: c.beam, token: c.token });
      }
    }
    this.#beams = next;

    if (next.length === 0) this.#done = true;
    else if (this.#hyps.length >= nb && this.#worst >= next[0].score / len ** this.#o.lengthPenalty) {
      this.#done = true;
    } else if (len >= this.#o.maxNewTokens) {
      for (const beam of next) this.#add(beam.tokens.slice(), beam.score, len, 'length');
      this.#done = true;
    }
    return this.#done ? [] : choices;
  }

  /** Best finished hypothesis by `score / length ** lengthPenalty` (EOS counted in the length, not returned), else the best live beam. */
  best(): { tokens: number[]; finishReason: 'stop' | 'length' } {
    let best: Hypothesis | undefined;
    // `>=`: among equal scores the latest added wins, as in HF's stable sort-then-pop.
    for (const h of this.#hyps) if (best === undefined || h.score >= best.score) best = h;
    if (best) return { tokens: best.tokens.slice(), finishReason: best.finishReason };
    return { tokens: this.#beams[0]?.tokens.slice() ?? [], finishReason: 'length' };
  }

  // HF BeamHypotheses.add: keep the numBeams best, evicting the oldest of the worst on ties.
  #add(tokens: number[], sumLogprobs: number, length: number, finishReason: Hypothesis['finishReason']): void {
    const score = sumLogprobs / length ** this.#o.lengthPenalty;
    const hyps = this.#hyps;
    if (hyps.length >= this.#o.numBeams && !(score > this.#worst)) return;
    hyps.push({ tokens, score, finishReason });
    if (hyps.length > this.#o.numBeams) {
      let w = 0;
      for (let i = 1; i < hyps.length; i++) if (hyps[i].score < hyps[w].score) w = i;
      hyps.splice(w, 1);
    }
    this.#worst = Math.min(...hyps.map((h) => h.score));
  }
}
