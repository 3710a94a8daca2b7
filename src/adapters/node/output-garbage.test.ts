import { afterEach, describe, expect, it, vi } from 'vitest';
import { exposedGc, externalBytes, OutputGarbage } from './output-garbage.js';

const MB = 2 ** 20;

/** A thread whose external memory the test sets; gc() drops it to what is live. */
function fakeThread() {
  const t = { external: 10 * MB, live: 10 * MB, gcs: 0 };
  const garbage = new OutputGarbage({
    gc: () => {
      t.gcs++;
      t.external = t.live;
    },
    external: () => t.external,
    thresholdBytes: 64 * MB,
    idleMs: 1000,
  });
  return { t, garbage };
}

describe('OutputGarbage', () => {
  afterEach(() => void vi.useRealTimers());

  it('collects once the outputs since the last collection reach the threshold, not before', () => {
    const { t, garbage } = fakeThread();
    t.external += 40 * MB; // a prefill's copies
    garbage.after(true);
    expect(t.gcs).toBe(0);
    t.external += 30 * MB; // 70 MB since the last collection
    garbage.after(true);
    expect(t.gcs).toBe(1);
    expect(garbage.collections).toBe(1);
  });

  it('leaves short requests (decode steps) to V8 while they come', () => {
    const { t, garbage } = fakeThread();
    for (let step = 0; step < 10; step++) {
      t.external += 40 * MB;
      garbage.after(false);
    }
    expect(t.gcs).toBe(0);
    garbage.after(true);
    expect(t.gcs).toBe(1);
  });

  it('measures from what was live after the last collection (a growing KV cache is not garbage)', () => {
    const { t, garbage } = fakeThread();
    t.live = 200 * MB; // sequences' caches, kept
    t.external = 270 * MB;
    garbage.after(true);
    expect(t.gcs).toBe(1);
    t.external += 50 * MB;
    garbage.after(true);
    expect(t.gcs).toBe(1);
  });

  it('collects what is left once the thread has been idle, and not while requests keep coming', () => {
    vi.useFakeTimers();
    const { t, garbage } = fakeThread();
    t.external += 5 * MB;
    garbage.after(false);
    vi.advanceTimersByTime(900);
    garbage.after(false); // another request: the idle clock starts again
    vi.advanceTimersByTime(900);
    expect(t.gcs).toBe(0);
    vi.advanceTimersByTime(200);
    expect(t.gcs).toBe(1);
    garbage.after(false); // nothing grew since: no timer
    vi.advanceTimersByTime(5000);
    expect(t.gcs).toBe(1);
  });

  it("frees a real thread's dropped array buffers with the exposed gc", () => {
    const gc = exposedGc();
    expect(gc).toBeTypeOf('function');
    gc!();
    const before = externalBytes();
    let kept: Float32Array | undefined = new Float32Array(16 * MB);
    expect(externalBytes() - before).toBeGreaterThan(56 * MB);
    kept = undefined;
    gc!();
    expect(kept).toBeUndefined();
    expect(externalBytes() - before).toBeLessThan(MB);
  });
});
