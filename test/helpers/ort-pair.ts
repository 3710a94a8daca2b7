/**
 * Two OrtCausalLM instances of one model that must agree (one with lookahead, one with its
 * attention rewritten, ...): every call goes to both, and their results are compared.
 */
import { expect } from 'vitest';
import type { OrtCausalLM } from '../../src/onnx/ort-causal-lm.js';
import type { ForwardItem } from '../../src/runtime/backend.js';
import { argmax } from '../../src/runtime/sampling/sample.js';

export class Pair {
  /**
   * `tolerance` 0 (the default): bit-identical results. Otherwise each logit (and hidden-state
   * value) may differ by less than that; the argmax of every row must still agree.
   */
  constructor(
    readonly plain: OrtCausalLM,
    readonly other: OrtCausalLM,
    readonly tolerance = 0,
  ) {}

  /** Runs `items` on both and returns the argmax of each row (or what `pick` takes); `tolerance` overrides the pair's. */
  async forward(items: ForwardItem[], tolerance = this.tolerance, pick: (row: number[], item: ForwardItem) => number = argmax): Promise<number[]> {
    const expected = (await this.plain.forward(items)).map((row) => Array.from(row));
    const actual = (await this.other.forward(items)).map((row) => Array.from(row));
    if (tolerance === 0) expect(actual).toEqual(expected);
    else {
      expect(actual.length).toBe(expected.length);
      actual.forEach((row, r) => {
        const worst = Math.max(...row.map((x, i) => Math.abs(x - expected[r][i])));
        expect(worst, `row ${r} of ${JSON.stringify(items.map((item) => item.seq))}`).toBeLessThan(tolerance);
      });
    }
    expect(actual.map(argmax)).toEqual(expected.map(argmax));
    return expected.map((row, i) => pick(row, items[i]));
  }

  async fork(src: number, dst: number): Promise<void> {
    await this.plain.fork(src, dst);
    await this.other.fork(src, dst);
  }

  release(seq: number): void {
    this.plain.release(seq);
    this.other.release(seq);
  }

  /** Mean-pooled hidden states of `tokens` from both; returns the plain model's. */
  async hidden(tokens: number[]): Promise<Float32Array> {
    const [a] = await this.plain.hiddenStates([tokens]);
    const [b] = await this.other.hiddenStates([tokens]);
    if (this.tolerance === 0) expect(Array.from(b)).toEqual(Array.from(a));
    else {
      expect(b.length).toBe(a.length);
      b.forEach((x, i) => expect(Math.abs(x - a[i])).toBeLessThan(this.tolerance));
    }
    return a;
  }

  async dispose(): Promise<void> {
    await this.plain.dispose();
    await this.other.dispose();
  }
}
