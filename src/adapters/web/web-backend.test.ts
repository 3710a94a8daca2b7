import { describe, expect, it } from 'vitest';
import type { OrtCausalLM } from '../../onnx/ort-causal-lm.js';
import type { ForwardItem } from '../../runtime/backend.js';
import { WebBackend } from './web-backend.js';

/** Records the order in which calls run; forward takes a few microtask turns, like onnxruntime-web's run(). */
function fakeModel(log: string[]) {
  return {
    info: { vocabSize: 4, hiddenSize: 2, contextLength: 8 },
    counters: { decodeCalls: 0 },
    liveSequences: 0,
    async forward(items: ForwardItem[]) {
      log.push(`forward start ${items.map((i) => i.seq)}`);
      for (let i = 0; i < 3; i++) await Promise.resolve();
      log.push('forward end');
      return items.map(() => new Float32Array(4));
    },
    fork: (src: number, dst: number) => void log.push(`fork ${src}->${dst}`),
    release: (seq: number) => void log.push(`release ${seq}`),
    hiddenStates: async () => {
      log.push('hidden');
      return [new Float32Array(2)];
    },
    dispose: async () => void log.push('dispose'),
  } as unknown as OrtCausalLM;
}

describe('WebBackend', () => {
  it('runs calls strictly in the order they were made, never two at once', async () => {
    const log: string[] = [];
    const backend = new WebBackend(fakeModel(log));
    const first = backend.forward([{ seq: 1, tokens: [1, 2] }]);
    const fork = backend.fork(1, 2);
    backend.release(1);
    const second = backend.forward([{ seq: 2, tokens: [3] }]);
    await Promise.all([first, fork, second, backend.hiddenStates([[1]])]);
    expect(log).toEqual(['forward start 1', 'forward end', 'fork 1->2', 'release 1', 'forward start 2', 'forward end', 'hidden']);
  });

  it('gives the event loop a turn before each forward step', async () => {
    const log: string[] = [];
    const backend = new WebBackend(fakeModel(log));
    setImmediate(() => log.push('macrotask'));
    await backend.forward([{ seq: 1, tokens: [1] }]);
    expect(log[0]).toBe('macrotask');
  });

  it('keeps going after a failed call', async () => {
    const log: string[] = [];
    const model = fakeModel(log);
    const backend = new WebBackend(model);
    (model as unknown as { fork: () => void }).fork = () => {
      throw new Error('unknown sequence');
    };
    await expect(backend.fork(9, 10)).rejects.toThrow('unknown sequence');
    await expect(backend.forward([{ seq: 1, tokens: [1] }])).resolves.toHaveLength(1);
  });
});
