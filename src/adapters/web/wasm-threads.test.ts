import { describe, expect, it } from 'vitest';
import { chooseWasmThreads, threadHost } from './wasm-threads.js';

const isolatedPage = { crossOriginIsolated: true, sharedArrayBuffer: true, workers: true, hardwareConcurrency: 8 };

describe('chooseWasmThreads', () => {
  it('uses threads in a cross-origin isolated page: half the cores, at most 4, or the number asked for', () => {
    expect(chooseWasmThreads(undefined, isolatedPage)).toEqual({
      threads: 4,
      message: 'wasm on 4 threads: cross-origin isolated, 8 cores (half, at most 4)',
    });
    expect(chooseWasmThreads(undefined, { ...isolatedPage, hardwareConcurrency: 2 }).threads).toBe(1);
    expect(chooseWasmThreads(undefined, { ...isolatedPage, hardwareConcurrency: 6 }).threads).toBe(3);
    expect(chooseWasmThreads(undefined, { ...isolatedPage, hardwareConcurrency: 32 }).threads).toBe(4);
    expect(chooseWasmThreads(2, { ...isolatedPage, hardwareConcurrency: 2 })).toEqual({ threads: 2, message: 'wasm on 2 threads (wasm.threads)' });
  });

  it('falls back to one thread, saying why, where threads cannot work', () => {
    const notIsolated = { ...isolatedPage, crossOriginIsolated: false, sharedArrayBuffer: false };
    expect(chooseWasmThreads(undefined, notIsolated)).toEqual({
      threads: 1,
      message: expect.stringMatching(/^wasm on 1 thread: the page is not cross-origin isolated \(serve it with Cross-Origin-Opener-Policy/),
    });
    expect(chooseWasmThreads(4, notIsolated).message).toMatch(/^wasm on 1 thread instead of the 4 asked for: the page is not cross-origin isolated/);
    // A Service Worker: isolated or not, it has no Worker constructor.
    expect(chooseWasmThreads(undefined, { ...isolatedPage, workers: false })).toEqual({
      threads: 1,
      message: 'wasm on 1 thread: this host cannot start Workers (a Service Worker or workerd)',
    });
    expect(chooseWasmThreads(1, isolatedPage)).toEqual({ threads: 1, message: 'wasm on 1 thread (wasm.threads: 1)' });
  });

  it('refuses a thread count that is not a whole number of at least 1', () => {
    expect(() => chooseWasmThreads(0, isolatedPage)).toThrow(/at least 1, not 0/);
    expect(() => chooseWasmThreads(1.5, isolatedPage)).toThrow(/at least 1, not 1.5/);
  });

  it('reads the host from the globals', () => {
    expect(threadHost({ crossOriginIsolated: true, SharedArrayBuffer, Worker: class {}, navigator: { hardwareConcurrency: 6 } })).toEqual({
      crossOriginIsolated: true,
      sharedArrayBuffer: true,
      workers: true,
      hardwareConcurrency: 6,
    });
    expect(threadHost({})).toEqual({ crossOriginIsolated: undefined, sharedArrayBuffer: false, workers: false, hardwareConcurrency: undefined });
  });
});
