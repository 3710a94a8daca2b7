import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOAD_CHECKS_VERSION, type LoadVerdict } from '../../onnx/ort-causal-lm.js';
import { loadCheckDir, modelFileStamps, readLoadChecks, storeLoadChecks, type LoadCheckSettings } from './load-checks.js';

const root = mkdtempSync(join(tmpdir(), 'edgellm-load-checks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const settings: LoadCheckSettings = { runtime: '1.30.0', executionProviders: ['cpu'], contextLength: 8192, hiddenSize: 576, attention: { heads: 9 } };
const verdict: LoadVerdict = {
  version: LOAD_CHECKS_VERSION, attention: 'GroupQueryAttention (30 layers)', matmul: '', tokensPlan: 'any', batchPlan: 'batched',
  chunksOnPast: true, batchesPadded: true, padRight: false, batchInvariant: true, quantizedActivations: false, kvInPlace: true,
  kvPlan: 'KV written in place', hiddenOutput: 'edgellm_hidden',
};

function model(name: string) {
  const dir = join(root, name, 'onnx');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model_q4.onnx'), 'graph');
  writeFileSync(join(dir, 'model_q4.onnx.data'), 'weights');
  writeFileSync(join(dir, 'model_q4.onnx.mapping.txt'), 'log lines');
  writeFileSync(join(dir, 'model.onnx'), 'another dtype');
  return join(dir, 'model_q4.onnx');
}

describe('load-check verdicts: the key', () => {
  it('stamps the graph and its external data, not other files of the folder', () => {
    const path = model('stamps');
    expect(modelFileStamps(path).map((s) => s.split('|')[0].split('/').pop())).toEqual(['model_q4.onnx', 'model_q4.onnx.data']);
  });

  it('changes with the files, the runtime, the providers and every setting', () => {
    const path = model('key');
    const base = loadCheckDir(root, path, settings);
    expect(loadCheckDir(root, path, { ...settings })).toBe(base);
    for (const changed of [
      { runtime: '1.31.0' }, { executionProviders: ['cuda'] }, { threads: 2 }, { exactQuantized: true }, { int8MatMul: true },
      { attention: undefined }, { contextLength: 4096 }, { hiddenSize: 577 }, { expected: { layers: 30 } },
    ]) {
      expect(loadCheckDir(root, path, { ...settings, ...changed }), JSON.stringify(changed)).not.toBe(base);
    }
    utimesSync(`${path}.data`, new Date(), new Date(Date.now() + 5000)); // external weights rewritten
    expect(loadCheckDir(root, path, settings)).not.toBe(base);
  });
});

describe('load-check verdicts: stored and read back', () => {
  it('reads back what was stored, naming the graph file', async () => {
    const dir = join(root, 'store');
    mkdirSync(dir);
    writeFileSync(join(dir, 'optimized-1.onnx'), 'g');
    writeFileSync(join(dir, 'optimized-1.onnx.data'), 'w');
    await storeLoadChecks(dir, verdict, 'optimized-1.onnx');
    expect(readLoadChecks(dir)).toEqual({ verdict, graph: join(dir, 'optimized-1.onnx') });

    // A new verdict (after a re-probe) replaces the old graph files.
    writeFileSync(join(dir, 'optimized-2.onnx'), 'g');
    writeFileSync(join(dir, 'optimized-2.onnx.data'), 'w');
    await storeLoadChecks(dir, { ...verdict, batchPlan: 'one sequence per decode run' }, 'optimized-2.onnx');
    expect(readLoadChecks(dir)?.verdict.batchPlan).toBe('one sequence per decode run');
    expect(readLoadChecks(dir)?.graph).toBe(join(dir, 'optimized-2.onnx'));
    await expect(storeLoadChecks(dir, verdict, 'optimized-1.onnx')).rejects.toThrow(/did not write optimized-1.onnx/);
  });

  it('has none when the folder, the graph or its weights are missing, or the checks changed version', async () => {
    expect(readLoadChecks(join(root, 'nothing'))).toBeUndefined();
    const dir = join(root, 'partial');
    mkdirSync(dir);
    writeFileSync(join(dir, 'optimized-1.onnx'), 'g');
    writeFileSync(join(dir, 'optimized-1.onnx.data'), 'w');
    await storeLoadChecks(dir, verdict, 'optimized-1.onnx');
    rmSync(join(dir, 'optimized-1.onnx.data'));
    expect(readLoadChecks(dir)).toBeUndefined();
    writeFileSync(join(dir, 'optimized-1.onnx.data'), 'w');
    writeFileSync(join(dir, 'verdict.json'), JSON.stringify({ verdict: { ...verdict, version: LOAD_CHECKS_VERSION + 1 }, graph: 'optimized-1.onnx' }));
    expect(readLoadChecks(dir)).toBeUndefined();
    writeFileSync(join(dir, 'verdict.json'), JSON.stringify({ verdict, graph: '../elsewhere.onnx' }));
    expect(readLoadChecks(dir)).toBeUndefined();
    writeFileSync(join(dir, 'verdict.json'), '{ not json');
    expect(readLoadChecks(dir)).toBeUndefined();
  });
});
