import { describe, expect, it } from 'vitest';
import {
  attempt, collect, FakeBackend, FakeTokenizer, logitsFrom, makeEngine, request, settle, textOf, usageOf,
} from '../../test/fixtures/fake-backend.js';
import type { ForwardItem } from './backend.js';
import { Job, type JobContext } from './job.js';
import { Scheduler } from './scheduler.js';

/** A job that plans `width` one-token items per step for `steps` steps, recording the logits it gets. */
class StubJob extends Job {
  readonly received: Float32Array[][] = [];
  disposedCount = 0;
  private stepsDone = 0;

  constructor(
    private readonly seqs: number[],
    private readonly steps: number,
    private readonly backend: FakeBackend,
  ) {
    const ctx: JobContext = { backend, tokenizer: new FakeTokenizer(), allocSeq: () => 0, emit: () => {}, onDispose: () => this.disposedCount++ };
    super({ promptTokens: [1], sampling: {} as never, maxNewTokens: steps, minTokens: 0, stop: [], stopTokenIds: [], ignoreEos: false, n: 1 }, ctx);
  }

  plan(): ForwardItem[] {
    return this.seqs.map((seq) => ({ seq, tokens: [3] }));
  }

  async advance(logits: Float32Array[]): Promise<void> {
    this.received.push(logits.map((row) => row.slice())); // copies: rows are only valid until the next forward
    if (++this.stepsDone >= this.steps) this.done = true;
  }

  protected liveSeqs(): number[] {
    return this.seqs;
  }
}

/** Logits with a single 1 at index `seq`, so a test can tell whose row a job got. */
const bySeq = () => new FakeBackend({ logits: (h, v) => logitsFrom(v, { [h.length]: 1 }) });

function submit(scheduler: Scheduler, job: Job) {
  const failures: unknown[] = [];
  scheduler.submit({ job, fail: (e) => failures.push(e) });
  return failures;
}

describe('Scheduler', () => {
  it("forwards every running job's plan in one call and hands each job its own rows", async () => {
    const backend = new FakeBackend({ logits: (_h, v) => new Float32Array(v) });
    // Tag each row with its item's sequence id.
    const original = backend.forward.bind(backend);
    backend.forward = async (items) => (await original(items)).map((row, i) => row.fill(items[i].seq));
    const scheduler = new Scheduler(backend, { maxConcurrent: 4, maxQueue: 4 });
    const a = new StubJob([10, 11], 2, backend);
    const b = new StubJob([20], 3, backend);
    submit(scheduler, a);
    submit(scheduler, b);
    await settle();
    // b arrived while a's first step was in flight: it joins from the second step.
    expect(backend.forwards.map((items) => items.map((i) => i.seq))).toEqual([[10, 11], [10, 11, 20], [20], [20]]);
    expect(a.received.map((rows) => rows.map((r) => r[0]))).toEqual([[10, 11], [10, 11]]);
    expect(b.received.map((rows) => rows.map((r) => r[0]))).toEqual([[20], [20], [20]]);
    // Finished jobs are disposed once and their sequences released.
    expect([a.disposedCount, b.disposedCount]).toEqual([1, 1]);
    expect(backend.releases.sort()).toEqual([10, 11, 20]);
    expect(scheduler.load).toEqual({ running: 0, waiting: 0 });
  });

  it('runs at most maxConcurrent jobs; the rest wait their turn in order', async () => {
    const backend = bySeq();
    const scheduler = new Scheduler(backend, { maxConcurrent: 2, maxQueue: 8 });
    const jobs = [new StubJob([1], 2, backend), new StubJob([2], 3, backend), new StubJob([3], 1, backend), new StubJob([4], 1, backend)];
    jobs.forEach((j) => submit(scheduler, j));
    expect(scheduler.load).toEqual({ running: 1, waiting: 3 }); // the first step is already in flight
    await settle();
    expect(backend.forwards.map((items) => items.map((i) => i.seq))).toEqual([[1], [1, 2], [2, 3], [2, 4]]);
    expect(jobs.map((j) => j.received.length)).toEqual([2, 3, 1, 1]);
  });

  it('rejects with 429 and retry-after when the slots and the queue are full', async () => {
    const backend = bySeq();
    const scheduler = new Scheduler(backend, { maxConcurrent: 1, maxQueue: 1 });
    submit(scheduler, new StubJob([1], 3, backend));
    submit(scheduler, new StubJob([2], 1, backend));
    let error: unknown;
    try {
      submit(scheduler, new StubJob([3], 1, backend));
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ status: 429, code: 'queue_full', headers: { 'retry-after': '1' } });
    await settle();
    // Room again once they are done.
    const late = new StubJob([4], 1, backend);
    expect(() => submit(scheduler, late)).not.toThrow();
    await settle();
    expect(late.done).toBe(true);
  });

  it('bounds a burst of submissions while a step is in flight by maxConcurrent + maxQueue', async () => {
    const backend = bySeq();
    const scheduler = new Scheduler(backend, { maxConcurrent: 2, maxQueue: 1 });
    let accepted = 0;
    let rejected = 0;
    for (let i = 1; i <= 10; i++) {
      try {
        submit(scheduler, new StubJob([i], 2, backend));
        accepted++;
      } catch (e) {
        expect(e).toMatchObject({ status: 429 });
        rejected++;
      }
    }
    expect([accepted, rejected]).toEqual([3, 7]);
    await settle();
  });

  it('drops cancelled jobs, queued ones included, without running them again', async () => {
    const backend = bySeq();
    const scheduler = new Scheduler(backend, { maxConcurrent: 1, maxQueue: 4 });
    const running = new StubJob([1], 100, backend);
    const queued = new StubJob([2], 1, backend);
    submit(scheduler, running);
    submit(scheduler, queued);
    queued.cancel();
    await new Promise((r) => setTimeout(r, 0));
    running.cancel();
    const stepsAtCancel = backend.forwards.length;
    await settle();
    expect(backend.forwards.length - stepsAtCancel).toBeLessThanOrEqual(1);
    expect(queued.received).toEqual([]);
    expect(backend.forwardedItems.some((i) => i.seq === 2)).toBe(false);
    expect([running.disposedCount, queued.disposedCount]).toEqual([1, 1]);
    expect(scheduler.load).toEqual({ running: 0, waiting: 0 });
  });

  it('fails every job of a failing step, reports the error once, disposes them and goes on with the queue', async () => {
    const backend = bySeq();
    const errors: unknown[] = [];
    const scheduler = new Scheduler(backend, { maxConcurrent: 2, maxQueue: 4, onError: (e) => errors.push(e) });
    const boom = new Error('boom');
    backend.failWhen = (call) => (call === 1 ? boom : undefined);
    const a = new StubJob([1], 5, backend);
    const b = new StubJob([2], 5, backend);
    const c = new StubJob([3], 2, backend);
    const fa = submit(scheduler, a);
    const fb = submit(scheduler, b);
    const fc = submit(scheduler, c);
    await settle();
    expect(errors).toEqual([boom]);
    expect(fa).toEqual([boom]);
    expect(fb).toEqual([boom]);
    expect(fc).toEqual([]);
    expect(c.done).toBe(true);
    expect([a.disposedCount, b.disposedCount, c.disposedCount]).toEqual([1, 1, 1]);
    expect(a.received.length).toBe(1);
    expect(backend.live.size).toBe(0);
  });

  it('a job whose advance throws fails its step like a forward failure', async () => {
    const backend = bySeq();
    const scheduler = new Scheduler(backend, { maxConcurrent: 2, maxQueue: 4 });
    const bad = new StubJob([1], 5, backend);
    bad.advance = async () => {
      throw new Error('bad logits');
    };
    const fails = submit(scheduler, bad);
    await settle();
    expect((fails[0] as Error).message).toBe('bad logits');
    expect(bad.disposedCount).toBe(1);
  });

  it('starts again after going idle', async () => {
    const backend = bySeq();
    const scheduler = new Scheduler(backend, { maxConcurrent: 1, maxQueue: 0 });
    const first = new StubJob([1], 2, backend);
    submit(scheduler, first);
    await settle();
    expect(first.done).toBe(true);
    const second = new StubJob([2], 2, backend);
    submit(scheduler, second);
    await settle();
    expect(second.received.length).toBe(2);
  });
});

describe('engine concurrency', () => {
  it('with maxConcurrent 2, three requests never share a forward three ways; the third waits, then completes', async () => {
    const { engine, backend } = makeEngine({ backend: { delayMs: 1 }, engine: { maxConcurrent: 2 } });
    const results = await Promise.all([
      collect(() => engine.generate(request({ prompt: 'one', maxTokens: 2 }))),
      collect(() => engine.generate(request({ prompt: 'five', maxTokens: 6 }))),
      collect(() => engine.generate(request({ prompt: 'ten', maxTokens: 3 }))),
    ]);
    expect(results.map((e) => textOf(e))).toEqual([' two three', ' six seven eight nine ten eleven', ' eleven twelve thirteen']);
    expect(Math.max(...backend.forwards.map((items) => items.length))).toBe(2);
    const firstStepOf = (seq: number) => backend.forwards.findIndex((items) => items.some((i) => i.seq === seq));
    const lastStepOf = (seq: number) => backend.forwards.findLastIndex((items) => items.some((i) => i.seq === seq));
    // Requests 1 and 2 ran together; 3 started only after 1 had finished.
    expect(firstStepOf(1)).toBe(0);
    expect(backend.forwards[1].map((i) => i.seq)).toEqual([1, 2]);
    expect(firstStepOf(3)).toBeGreaterThan(lastStepOf(1));
    await settle();
    expect(backend.live.size).toBe(0);
  });

  it('with maxQueue 0 and every slot busy, a request gets 429 with retry-after before any event', async () => {
    // Slow steps give a wide window: a and b run for 5 x 20 ms while c arrives after their first step.
    const { engine, backend } = makeEngine({ backend: { delayMs: 20 }, engine: { maxConcurrent: 2, maxQueue: 0 } });
    const a = attempt(() => engine.generate(request({ prompt: 'one', maxTokens: 5 })));
    const b = attempt(() => engine.generate(request({ prompt: 'two', maxTokens: 5 })));
    while (backend.forwards.length === 0) await new Promise((r) => setTimeout(r, 1));
    const c = await attempt(() => engine.generate(request({ prompt: 'three', maxTokens: 5 })));
    expect(c.events).toEqual([]);
    expect(c.error).toMatchObject({ status: 429, headers: { 'retry-after': '1' } });
    const [ra, rb] = await Promise.all([a, b]);
    expect(usageOf(ra.events)?.completionTokens).toBe(5);
    expect(usageOf(rb.events)?.completionTokens).toBe(5);
    expect(backend.forwardedItems.some((i) => i.seq === 3)).toBe(false);
    await settle();
    expect(backend.live.size).toBe(0);
  });

  it('with maxQueue 0, a burst of three requests for two slots rejects the third', async () => {
    const { engine } = makeEngine({ engine: { maxConcurrent: 2, maxQueue: 0 } });
    const results = await Promise.all(['one', 'two', 'three'].map((prompt) => attempt(() => engine.generate(request({ prompt, maxTokens: 2 })))));
    expect(results.map((r) => (r.error as { status?: number } | undefined)?.status)).toEqual([undefined, undefined, 429]);
  });
});
