import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOAD_CHECKS_VERSION, type LoadVerdict } from '../../onnx/ort-causal-lm.js';
import { LOAD_CHECKS_PER_MODEL, loadCheckDir, modelFileStamps, pruneLoadChecks, readLoadChecks, storeLoadChecks, type LoadCheckSettings } from './load-checks.js';

const root = mkdtempSync(join(tmpdir(), 'edgellm-load-checks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const settings: LoadCheckSettings = { runtime: '1.30.0', executionProviders: ['cpu'], contextLength: 8192, hiddenSize: 576, attention: { heads: 9 } };
const verdict: LoadVerdict = {
  version: LOAD_CHECKS_VERSION, attention: 'GroupQueryAttention (30 layers)', matmul: '', tokensPlan: 'any', batchPlan: 'batched',
  chunksOnPast: true, batchesPadded: true, padRight: false, batchInvariant: true, quantizedActivations: false, rowInvariant: false, kvInPlace: true,
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

describe('load-check verdicts: pruned', () => {
  const checks = join(root, 'prune', 'load-checks');
  const days = (n: number) => new Date(Date.now() - n * 24 * 3600_000);
  async function stored(name: string, model: string, usedDaysAgo: number, v: LoadVerdict = verdict) {
    const dir = join(checks, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'optimized-1.onnx'), 'g');
    writeFileSync(join(dir, 'optimized-1.onnx.data'), 'w');
    await storeLoadChecks(dir, v, 'optimized-1.onnx', model);
    utimesSync(join(dir, 'verdict.json'), days(usedDaysAgo), days(usedDaysAgo));
    return dir;
  }

  it('removes unusable verdicts, abandoned folders and the least recently used verdicts of the same model', async () => {
    for (let i = 0; i < LOAD_CHECKS_PER_MODEL + 1; i++) await stored(`same-${i}`, '/m/a.onnx', i + 1);
    await stored('other-model', '/m/b.onnx', 30);
    const old = await stored('old-checks', '/m/a.onnx', 0);
    writeFileSync(join(old, 'verdict.json'), JSON.stringify({ verdict: { ...verdict, version: LOAD_CHECKS_VERSION - 1 }, graph: 'optimized-1.onnx', edgellm: '0.1.0', model: '/m/a.onnx' }));
    const unversioned = await stored('before-releases-recorded', '/m/b.onnx', 0);
    writeFileSync(join(unversioned, 'verdict.json'), JSON.stringify({ verdict, graph: 'optimized-1.onnx' }));
    mkdirSync(join(checks, 'abandoned'));
    utimesSync(join(checks, 'abandoned'), days(2), days(2));
    mkdirSync(join(checks, 'being-written'));
    const current = await stored('current', '/m/a.onnx', 0);
    // used just now by a start: the most recent of the others
    expect(readLoadChecks(join(checks, 'same-3'))).toBeDefined();
    expect(statSync(join(checks, 'same-3', 'verdict.json')).mtimeMs).toBeGreaterThan(days(0.01).getTime());

    const removed = (await pruneLoadChecks(current, '/m/a.onnx')).map((p) => p.split('/').pop()).sort();
    // kept for /m/a.onnx: current + the LOAD_CHECKS_PER_MODEL - 1 most recently used (same-3 was just read, then same-0, same-1)
    expect(removed).toEqual(['abandoned', 'before-releases-recorded', 'old-checks', 'same-2', 'same-4']);
    expect(readdirSync(checks).sort()).toEqual(['being-written', 'current', 'other-model', 'same-0', 'same-1', 'same-3']);
    expect(existsSync(join(current, 'optimized-1.onnx.data'))).toBe(true);
  });
});
