/**
 * Broken model directories: the error names the file, and config.json values that contradict
 * the ONNX graph (or make no sense) are refused at load instead of failing requests later.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../src/adapters/node/runtime.js';
import { requireBuild } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const dir = sharedModel(STORIES);

describe.skipIf(!dir)('model load errors', () => {
  const copies: string[] = [];
  /** A copy of stories260K (fp32 only) with `change` applied. */
  const broken = (change: (copy: string) => void) => {
    const copy = join(mkdtempSync(join(tmpdir(), 'edgellm-broken-')), 'model');
    copies.push(copy);
    cpSync(dir!, copy, { recursive: true, filter: (src) => !/model_(quantized|q4)\.onnx$/.test(src) });
    change(copy);
    return copy;
  };
  const editConfig = (copy: string, edit: Record<string, unknown>) => {
    const path = join(copy, 'config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ...edit }));
  };
  const load = (model: string) => createNodeRuntime({ model, dtype: 'fp32', device: 'cpu', log: () => {} });
  afterAll(() => copies.forEach((c) => rmSync(join(c, '..'), { recursive: true, force: true })));

  it('names config.json and the field for nonsensical values', async () => {
    requireBuild();
    const copy = broken((c) => editConfig(c, { max_position_embeddings: -5 }));
    await expect(load(copy)).rejects.toThrow(`${join(copy, 'config.json')}: max_position_embeddings must be a positive integer, got -5`);
  });

  it('refuses a config.json whose sizes the graph contradicts, naming the field and the graph file', async () => {
    const copy = broken((c) => editConfig(c, { num_key_value_heads: 2, num_attention_heads: 8 }));
    await expect(load(copy)).rejects.toThrow(/config.json says num_key_value_heads 2, but the graph .*model\.onnx has 4/);
  });

  it('names the ONNX file when it cannot be loaded', async () => {
    const copy = broken((c) => writeFileSync(join(c, 'onnx', 'model.onnx'), 'not an onnx file'));
    await expect(load(copy)).rejects.toThrow(join(copy, 'onnx', 'model.onnx'));
  });

  it('names a tokenizer file that does not parse', async () => {
    const copy = broken((c) => writeFileSync(join(c, 'tokenizer.json'), '{"truncated": '));
    await expect(load(copy)).rejects.toThrow(join(copy, 'tokenizer.json'));
  });
});
