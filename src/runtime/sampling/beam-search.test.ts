import { describe, it, expect } from 'vitest';
import { BeamSearch, type BeamSearchOptions } from './beam-search.js';
import { argmax } from './sample.js';

const EOS = 0;
const A = 1;
const B = 2;
const C = 3;
type Model = (tokens: readonly number[]) => number[]; // next-token probabilities over [EOS, A, B, C]

const logits = (ps: number[]) => Float32Array.from(ps, (p) => (p > 0 ? Math.log(p) : -Infinity));
const opts = (o: Partial<BeamSearchOptions>): BeamSearchOptions => ({
  numBeams: 2, eosTokenIds: [EOS], lengthPenalty: 1, maxNewTokens: 10, ...o,
});

function run(bs: BeamSearch, model: Model) {
  let steps = 0;
  while (!bs.done) {
    bs.step(bs.beams.map((b) => logits(model(b.tokens))));
    steps++;
  }
  return { ...bs.best(), steps };
}

// Greedy takes A (0.5) then faces a flat continuation; B (0.4) is followed by C at 0.9.
const trap: Model = (t) => {
  if (t.length === 0) return [0.01, 0.5, 0.4, 0.09];
  if (t.length === 1) return t[0] === A ? [0.01, 0.35, 0.33, 0.31] : [0.02, 0.04, 0.04, 0.9];
  return [0.97, 0.01, 0.01, 0.01];
};

describe('BeamSearch', () => {
  it('finds the higher joint probability sequence where greedy does not', () => {
    const greedy: number[] = [];
    for (let tok = argmax(logits(trap(greedy))); tok !== EOS; tok = argmax(logits(trap(greedy)))) greedy.push(tok);
    expect(greedy).toEqual([A, A]);

    const bs = new BeamSearch(opts({}));
    expect(bs.beams).toEqual([{ tokens: [], score: 0 }]);
    expect(bs.step([logits(trap([]))])).toEqual([{ parent: 0, token: A }, { parent: 0, token: B }]);
    // The EOS after the first token ranked 4th, outside the top numBeams: dropped, not finished.
    expect(bs.step(bs.beams.map((b) => logits(trap(b.tokens))))).toEqual([
      { parent: 1, token: C },
      { parent: 0, token: A },
    ]);
    expect(bs.beams.map((b) => b.tokens)).toEqual([[B, C], [A, A]]);
    expect(bs.beams[0].score).toBeCloseTo(Math.log(0.4 * 0.9), 6);
    // Both beams end: two finished hypotheses, no live beam can beat them, so it stops here.
    expect(bs.step(bs.beams.map((b) => logits(trap(b.tokens))))).toEqual([]);
    expect(bs.done).toBe(true);
    expect(bs.best()).toEqual({ tokens: [B, C], finishReason: 'stop' });
    expect(bs.step([])).toEqual([]);
  });

  it('stops early instead of running to maxNewTokens', () => {
    expect(run(new BeamSearch(opts({ maxNewTokens: 50 })), trap)).toEqual({ tokens: [B, C], finishReason: 'stop', steps: 3 });
  });

  // [A, EOS]: logprob ln 0.6 over length 2; [B, B, B, EOS]: ln 0.4 over length 4.
  const lengthy: Model = (t) => {
    if (t.length === 0) return [0, 0.6, 0.4, 0];
    if (t[0] === A) return [1, 0, 0, 0];
    return t.length < 3 ? [0, 0, 1, 0] : [1, 0, 0, 0];
  };

  it('ranks finished hypotheses by score / length ** lengthPenalty (EOS counted)', () => {
    expect(run(new BeamSearch(opts({ lengthPenalty: 0 })), lengthy)).toEqual({ tokens: [A], finishReason: 'stop', steps: 4 });
    expect(run(new BeamSearch(opts({ lengthPenalty: 1 })), lengthy)).toEqual({ tokens: [B, B, B], finishReason: 'stop', steps: 4 });
  });

  it('ends with length at maxNewTokens, the live beams competing as hypotheses', () => {
    const noEos: Model = () => [0.001, 0.6, 0.3, 0.099];
    const bs = new BeamSearch(opts({ maxNewTokens: 3, numBeams: 3 }));
    expect(run(bs, noEos)).toEqual({ tokens: [A, A, A], finishReason: 'length', steps: 3 });
    expect(bs.beams.map((b) => b.tokens)).toEqual([[A, A, A], [A, A, B], [A, B, A]]);
  });

  it('never ends with EOS under ignoreEos, and not before minNewTokens', () => {
    const eager: Model = () => [0.9, 0.06, 0.03, 0.01];
    expect(run(new BeamSearch(opts({})), eager)).toEqual({ tokens: [], finishReason: 'stop', steps: 2 });
    expect(run(new BeamSearch(opts({ minNewTokens: 2 })), eager)).toEqual({ tokens: [A, A], finishReason: 'stop', steps: 3 });
    expect(run(new BeamSearch(opts({ ignoreEos: true, maxNewTokens: 4 })), eager)).toEqual({
      tokens: [A, A, A, A], finishReason: 'length', steps: 4,
    });
  });

  it('treats every id in eosTokenIds as an end, and survives beams running out of candidates', () => {
    const twoEos: Model = (t) => (t.length === 0 ? [0, 0.7, 0.3, 0] : [0.1, 0.05, 0.05, 0.8]);
    expect(run(new BeamSearch(opts({ eosTokenIds: [EOS, C] })), twoEos)).toEqual({ tokens: [A], finishReason: 'stop', steps: 2 });
    const dead = new BeamSearch(opts({}));
    expect(dead.step([logits([0, 0, 0, 0])])).toEqual([]);
    expect(dead.done).toBe(true);
    expect(dead.best()).toEqual({ tokens: [], finishReason: 'length' });
  });

  it('drops an EOS ranked below numBeams instead of finishing it', () => {
    // 20 tokens; C is a second EOS. Step 1 ranks EOS, A, C, B: C is third, outside the top 2.
    const wide: Model = (t) => {
      const ps = new Array<number>(20).fill(0);
      if (t.length === 0) [ps[EOS], ps[A], ps[C], ps[B]] = [0.4, 0.3, 0.2, 0.1];
      else ps.fill(1 / 16, 4);
      return ps;
    };
    // Had C's hypothesis counted, two would be finished after step 1 and the uniform step 2
    // (best live (ln 0.3 + ln 1/16) / 2 < ln 0.2) would end the search there.
    const bs = new BeamSearch(opts({ eosTokenIds: [EOS, C], maxNewTokens: 3 }));
    expect(run(bs, wide)).toEqual({ tokens: [], finishReason: 'stop', steps: 3 });
  });

  it('validates its input', () => {
    expect(() => new BeamSearch(opts({ numBeams: 0 }))).toThrow(RangeError);
    expect(() => new BeamSearch(opts({})).step([logits([1, 1, 1, 1]), logits([1, 1, 1, 1])])).toThrow(RangeError);
    expect(new BeamSearch(opts({ maxNewTokens: 0 })).done).toBe(true);
  });
});
