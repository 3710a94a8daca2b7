import { describe, it, expect } from 'vitest';
import {
  applyLogitBias,
  applyPresenceFrequencyPenalty,
  applyRepetitionPenalty,
  suppressTokens,
} from './processors.js';

const f32 = (xs: number[]) => Float32Array.from(xs);

describe('applyLogitBias', () => {
  it('adds the bias of listed ids, string keys included, and ignores ids outside the vocabulary', () => {
    const l = f32([1, 2, 3, 4]);
    applyLogitBias(l, { 0: 10, 2: -100, 7: 5, [-1]: 5 });
    applyLogitBias(l, JSON.parse('{"3": 0.5}') as Record<number, number>);
    expect(Array.from(l)).toEqual([11, 2, -97, 4.5]);
    expect(l.length).toBe(4);
  });
});

describe('applyRepetitionPenalty', () => {
  it('divides positive logits, multiplies negative ones, once per distinct id', () => {
    const l = f32([4, -4, 0, 3, 8]);
    applyRepetitionPenalty(l, [0, 1, 2, 0, 0, 1, 99], 2);
    expect(Array.from(l)).toEqual([2, -8, 0, 3, 8]);
  });

  it('is a no-op at penalty 1 and accepts any iterable', () => {
    const l = f32([4, -4]);
    applyRepetitionPenalty(l, [0, 1], 1);
    expect(Array.from(l)).toEqual([4, -4]);
    applyRepetitionPenalty(l, new Set([1]), 0.5);
    expect(Array.from(l)).toEqual([4, -2]);
  });
});

describe('applyPresenceFrequencyPenalty', () => {
  it('subtracts count * frequency + presence for tokens that occurred', () => {
    const l = f32([10, 10, 10, 10]);
    const counts = new Map([
      [0, 3],
      [1, 1],
      [2, 0],
      [9, 4],
    ]);
    applyPresenceFrequencyPenalty(l, counts, 0.5, 2);
    expect(Array.from(l)).toEqual([3.5, 7.5, 10, 10]);
  });

  it('handles negative (encouraging) penalties', () => {
    const l = f32([0, 0]);
    applyPresenceFrequencyPenalty(l, new Map([[1, 2]]), -1, -0.25);
    expect(Array.from(l)).toEqual([0, 1.5]);
  });
});

describe('suppressTokens', () => {
  it('sets the given ids to -Infinity', () => {
    const l = f32([1, 2, 3]);
    suppressTokens(l, [2, 0, 5]);
    expect(Array.from(l)).toEqual([-Infinity, 2, -Infinity]);
  });
});
