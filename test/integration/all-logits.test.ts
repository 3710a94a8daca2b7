/**
 * `ForwardItem.allLogits` through the Node inference thread on stories260K (fp32): a multi-token
 * item returns one row per position, cut from the shared buffer beside the other items' rows, and
 * the rows are the logits one-token steps give; `source` on the sequence itself drops positions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executionProviders } from '../../src/adapters/node/devices.js';
import { WorkerBackend } from '../../src/adapters/node/thread-backend.js';
import { modelShape } from '../../src/model/model-config.js';
import { argmax } from '../../src/runtime/sampling/sample.js';
import { requireBuild } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const dir = sharedModel(STORIES);

describe.skipIf(!dir)('allLogits through the inference thread (stories260K fp32)', () => {
  let backend: WorkerBackend;
  let vocab: number;
  beforeAll(async () => {
    requireBuild();
    const json = (name: string) => JSON.parse(readFileSync(join(dir!, name), 'utf8'));
    const shape = modelShape(json('config.json'), json('generation_config.json'));
    backend = await WorkerBackend.start(new URL('../../dist/inference-thread.js', import.meta.url), {
      model: { path: join(dir!, 'onnx', 'model.onnx'), contextLength: shape.contextLength, hiddenSize: shape.hiddenSize, expected: shape.expected },
      executionProviders: executionProviders('cpu'),
      threads: 1,
      lookahead: false,
    });
    vocab = backend.info.vocabSize;
  });
  afterAll(async () => {
    await backend?.dispose();
  });

  const copy = (rows: Float32Array[]) => rows.map((row) => row.slice());
  /** The logits after each of `tokens`, one call per token, on a fresh sequence holding `prompt`. */
  async function stepwise(seq: number, prompt: number[], tokens: number[]): Promise<Float32Array[]> {
    await backend.forward([{ seq, tokens: prompt }]);
    const rows: Float32Array[] = [];
    for (const t of tokens) rows.push(...copy(await backend.forward([{ seq, tokens: [t] }])));
    return rows;
  }
  const close = (a: Float32Array, b: Float32Array) => {
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    return max;
  };

  it('returns a row per position beside the other items, as one-token steps compute them', async () => {
    const prompt = [1, 403, 407, 261, 378];
    const draft = [281, 135, 263];
    const other = [1, 500, 301];
    await backend.forward([{ seq: 1, tokens: prompt }]);
    await backend.forward([{ seq: 2, tokens: other }]);
    const [all, single] = copy(await backend.forward([{ seq: 1, tokens: draft, allLogits: true }, { seq: 2, tokens: [290] }]));
    expect(all.length).toBe(draft.length * vocab);
    expect(single.length).toBe(vocab);

    const reference = await stepwise(3, prompt, draft);
    const [otherReference] = await stepwise(4, other, [290]);
    draft.forEach((_, i) => {
      const row = all.subarray(i * vocab, (i + 1) * vocab);
      expect(close(row, reference[i])).toBeLessThan(1e-4);
      expect(argmax(row)).toBe(argmax(reference[i]));
    });
    expect(close(single, otherReference)).toBeLessThan(1e-4);

    // Drop the last two positions in place, then go on: the same as a sequence that never had them.
    const [after] = copy(await backend.forward([{ seq: 1, tokens: [300], source: { seq: 1, length: prompt.length + 1 } }]));
    const [fresh] = (await stepwise(5, [...prompt, draft[0]], [300])).slice(-1);
    expect(close(after, fresh)).toBeLessThan(1e-4);
    for (const seq of [1, 2, 3, 4, 5]) backend.release(seq);
    expect((await backend.stats()).liveSequences).toBe(0);
  });
});
