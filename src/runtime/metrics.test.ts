import { describe, expect, it } from 'vitest';
import { Histogram, MetricsRecorder } from './metrics.js';

describe('Histogram', () => {
  it('puts each value in the first bucket whose bound it does not exceed, the rest in +Inf', () => {
    const h = new Histogram([1, 2, 5]);
    for (const v of [0.5, 1, 1.5, 2, 4, 9, 100]) h.observe(v);
    expect(h.snapshot()).toEqual({ bounds: [1, 2, 5], counts: [2, 2, 1, 2], sum: 118, count: 7 });
  });

  it('hands out copies', () => {
    const h = new Histogram([1]);
    const before = h.snapshot();
    h.observe(0);
    expect(before.count).toBe(0);
    expect(h.snapshot().counts).toEqual([1, 0]);
  });
});

describe('MetricsRecorder', () => {
  function clocked() {
    let t = 0;
    const recorder = new MetricsRecorder(() => t);
    return { recorder, at: (ms: number) => void (t = ms) };
  }

  it('times the first token, the gaps between tokens per choice, and the whole request', () => {
    const { recorder, at } = clocked();
    const timer = recorder.start(10, 0, false);
    at(50);
    timer.scheduled();
    at(200);
    timer.tokens(0, 1);
    at(300);
    timer.tokens(0, 1);
    at(320);
    timer.tokens(1, 1); // another choice: its own first token, no gap
    at(500);
    timer.tokens(0, 2); // two tokens at once: two gaps of 100 ms
    at(600);
    timer.end('stop');
    timer.end('abort'); // the first end wins
    expect(recorder.generationTokens).toBe(5);
    expect(recorder.ttft.snapshot()).toMatchObject({ count: 1, sum: 0.2 });
    expect(recorder.queue.snapshot()).toMatchObject({ count: 1, sum: 0.05 });
    const itl = recorder.itl.snapshot();
    expect(itl.count).toBe(3);
    expect(itl.sum).toBeCloseTo(0.3);
    expect(recorder.e2e.snapshot()).toMatchObject({ count: 1, sum: 0.6 });
    expect(recorder.requestsFinished).toEqual({ stop: 1, length: 0, tool_calls: 0, abort: 0, error: 0 });
    expect(recorder.promptTokens).toBe(10);
  });

  it('counts prefix cache lookups only when the cache is on', () => {
    const { recorder } = clocked();
    recorder.start(10, 0, false).end('stop');
    recorder.start(10, 6, true).end('length');
    expect(recorder.prefixCacheQueries).toBe(10);
    expect(recorder.prefixCacheHits).toBe(6);
    expect(recorder.promptTokens).toBe(20);
  });

  it('a rejected request counts as rejected and nothing else', () => {
    const { recorder } = clocked();
    const timer = recorder.start(7, 3, true);
    timer.reject();
    timer.end('error');
    expect(recorder).toMatchObject({ promptTokens: 0, prefixCacheQueries: 0, prefixCacheHits: 0, requestsRejected: 1 });
    expect(recorder.requestsFinished).toEqual({ stop: 0, length: 0, tool_calls: 0, abort: 0, error: 0 });
    expect(recorder.e2e.snapshot().count).toBe(0);
  });
});
