import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quantTensor, writeGguf } from '../../../test/helpers/gguf-writer.js';
import { randomPairs, writePeftDir } from '../../../test/helpers/lora-fixtures.js';
import { loadLoraFiles } from './lora-files.js';

const root = mkdtempSync(join(tmpdir(), 'edgellm-lora-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('loadLoraFiles', () => {
  const pairs = randomPairs([['model.layers.0.self_attn.q_proj', 8, 8]], 2, 3);

  it('a PEFT folder: its pairs, a hash of its files, and its tokenizer folder when it has one', () => {
    const dir = writePeftDir(join(root, 'peft'), pairs, 2, 4);
    const first = loadLoraFiles(dir);
    expect(first.lora.targets.map((t) => t.tensor)).toEqual(['blk.0.attn_q.weight']);
    expect(first.tokenizerDir).toBeUndefined();
    writeFileSync(join(dir, 'tokenizer.json'), '{}');
    expect(loadLoraFiles(dir)).toMatchObject({ tokenizerDir: dir, sha256: first.sha256 });
    const other = writePeftDir(join(root, 'peft2'), randomPairs([['model.layers.0.self_attn.q_proj', 8, 8]], 2, 4), 2, 4);
    expect(loadLoraFiles(other).sha256).not.toBe(first.sha256);
  });

  it('a GGUF LoRA file, or a folder holding one', () => {
    const dir = join(root, 'gguf');
    mkdirSync(dir);
    const meta = { 'general.architecture': 'llama', 'general.type': 'adapter', 'adapter.type': 'lora', 'adapter.lora.alpha': 4 };
    writeFileSync(join(dir, 'a.gguf'), writeGguf(meta, [quantTensor('blk.0.attn_q.weight.lora_a', 'F32', [8, 2], pairs[0].a), quantTensor('blk.0.attn_q.weight.lora_b', 'F32', [2, 8], pairs[0].b)]));
    for (const path of [dir, join(dir, 'a.gguf')]) expect(loadLoraFiles(path).lora.targets[0].pair.scale).toBe(2);
  });

  it('refuses what it cannot read, by name', () => {
    expect(() => loadLoraFiles(join(root, 'missing'))).toThrow(/no such file or directory/);
    const bin = join(root, 'bin');
    writePeftDir(bin, pairs, 2, 4);
    rmSync(join(bin, 'adapter_model.safetensors'));
    writeFileSync(join(bin, 'adapter_model.bin'), 'x');
    expect(() => loadLoraFiles(bin)).toThrow(/no adapter_model\.safetensors \(found adapter_model\.bin; only safetensors/);
    writeFileSync(join(root, 'x.txt'), 'x');
    expect(() => loadLoraFiles(join(root, 'x.txt'))).toThrow(/give a PEFT adapter folder or a GGUF LoRA file/);
  });
});
