/**
 * `--lora-modules` on the real SmolLM2-135M-Instruct Q4_1 GGUF (skipped without ../shared): two
 * random PEFT adapters served at run time from one base graph, against each adapter merged
 * (`--lora-model`), and the base id against llama.cpp's greedy reply; then a batch mixing the
 * three. The attention rewrite (GroupQueryAttention) must still apply to the graph with adapters.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeRuntimeOptions } from '../../src/adapters/node/runtime.js';
import { readGguf } from '../../src/gguf/reader.js';
import { decoderSpec } from '../../src/onnx/gguf-decoder-graph.js';
import { ggufModelJson } from '../../src/onnx/gguf-import.js';
import { requireBuild } from '../helpers/cli-server.js';
import { decoderModules, randomPairs, writePeftDir } from '../helpers/lora-fixtures.js';
import { serveRuntime, type ServedRuntime as Served } from '../helpers/served-runtime.js';
import { sharedModel } from '../helpers/shared-models.js';

const dir = sharedModel('SmolLM2-135M-Instruct');
const GGUF = dir && join(dir, 'SmolLM2-135M-Instruct.Q4_1.gguf');
const TOKENS = 8;

describe.skipIf(!dir)('--lora-modules on the real SmolLM2-135M-Instruct GGUF', () => {
  const reference = dir ? JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')).chat[0] : undefined;
  const work = mkdtempSync(join(tmpdir(), 'edgellm-lora-modules-smollm2-'));
  const spec = dir ? decoderSpec(ggufModelJson(readGguf(new Uint8Array(readFileSync(GGUF!)))).config) : undefined!;
  const sql = dir ? writePeftDir(join(work, 'sql'), randomPairs(decoderModules(spec, [0, 1], 0, ['q', 'k', 'v', 'o']), 4, 2, { std: 0.3 }), 4, 8) : '';
  const poem = dir ? writePeftDir(join(work, 'poem'), randomPairs(decoderModules(spec, [2], 1536, ['v', 'up', 'down']), 8, 3, { std: 0.2 }), 8, 16) : '';
  const servers: Served[] = [];
  const start = async (options: Partial<NodeRuntimeOptions>): Promise<Served> => {
    const served = await serveRuntime({ model: GGUF!, device: 'cpu', threads: 1, cacheDir: join(work, 'cache'), log: () => {}, ...options });
    servers.push(served);
    return served;
  };
  const chat = async (s: Served, model: string) => {
    const r = await s.client.chat.completions.create({ model, messages: [{ role: 'user', content: reference.prompt }], temperature: 0, max_tokens: TOKENS });
    return r.choices[0].message.content ?? '';
  };
  const BASE = 'SmolLM2-135M-Instruct.Q4_1';
  const merged: Record<string, string> = {};
  let multi: Served;

  beforeAll(async () => {
    requireBuild();
    // The merged servers one at a time (one model in memory besides the multi-adapter one).
    for (const [name, path] of [['sql', sql], ['poem', poem]]) {
      const s = await start({ loraModel: path });
      merged[name] = await chat(s, BASE);
      await s.close();
      servers.pop();
    }
    multi = await start({ loraModules: [{ name: 'sql', path: sql }, { name: 'poem', path: poem }] });
  }, 600_000);
  afterAll(async () => {
    for (const s of servers) await s.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('keeps the GroupQueryAttention rewrite with the adapters in the graph', () => {
    expect(multi.runtime.loadInfo.attention).toMatch(/^GroupQueryAttention \(30 layers/);
    expect(multi.runtime.loadInfo.adapters).toEqual(['sql', 'poem']);
  });

  it("each adapter's greedy text equals it merged, and the base id answers llama.cpp's base reply", async () => {
    expect(reference.reply.startsWith(merged.sql)).toBe(false); // the adapters matter
    expect(reference.reply.startsWith(merged.poem)).toBe(false);
    expect(await chat(multi, 'sql')).toBe(merged.sql);
    expect(await chat(multi, 'poem')).toBe(merged.poem);
    const base = await chat(multi, BASE);
    expect(base.length).toBeGreaterThan(5);
    expect(reference.reply.startsWith(base)).toBe(true);
  }, 300_000);

  it('a batch of the base and both adapters gives each its solo text', async () => {
    const models = [BASE, 'sql', 'poem'];
    const solo = [];
    for (const m of models) solo.push(await chat(multi, m));
    const before = await multi.runtime.backendStats();
    expect(await Promise.all(models.map((m) => chat(multi, m)))).toEqual(solo);
    const after = await multi.runtime.backendStats();
    expect(after.decodeRows - before.decodeRows).toBeGreaterThan(after.decodeCalls - before.decodeCalls);
  }, 300_000);
});
