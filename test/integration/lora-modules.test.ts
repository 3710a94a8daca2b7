/**
 * `--lora-modules` end to end on tiny random GGUF decoders (llama and qwen2): createNodeRuntime with
 * two PEFT adapters applied at run time, served on loopback and called with the openai client,
 * against servers that merge one adapter (`--lora-model`) and one without adapters. Each adapter's
 * greedy text equals its merged server's, the base id equals the plain server's, a batch mixing
 * the three gives each its solo text, a prompt cached under one model id is not reused under
 * another, and an unknown id is a 404 in the OpenAI format.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeRuntimeOptions } from '../../src/adapters/node/runtime.js';
import { requireBuild, runCli } from '../helpers/cli-server.js';
import { tinyGguf } from '../helpers/gguf-reference.js';
import { decoderModules, randomPairs, writePeftDir } from '../helpers/lora-fixtures.js';
import { serveRuntime, type ServedRuntime as Served } from '../helpers/served-runtime.js';

const PROMPTS = ['The quick brown fox', 'LoRA adapters at run time: one base graph, many'];
const TOKENS = 12;

describe.each(['llama', 'qwen2'] as const)('--lora-modules on a tiny %s GGUF', (architecture) => {
  const work = mkdtempSync(join(tmpdir(), `edgellm-lora-modules-${architecture}-`));
  // 4-bit blocks: float32 activations (accuracy level 0), as the merged adapter's float32 MatMul has; see ARCHITECTURE.md for 8-bit bases.
  const model = tinyGguf(architecture, { weights: 'Q4_0' }, { metadata: true });
  const file = join(work, `tiny-${architecture}.gguf`);
  writeFileSync(file, model.bytes);
  const sql = writePeftDir(join(work, 'sql'), randomPairs(decoderModules(model.spec, [0, 1], 256), 4, 21, { std: 0.3 }), 4, 8);
  const poem = writePeftDir(join(work, 'poem'), randomPairs(decoderModules(model.spec, [0, 1], 256, ['q', 'v', 'down']), 2, 22, { std: 0.8 }), 2, 4);
  const servers: Served[] = [];
  const logs: string[] = [];
  const start = async (options: Partial<NodeRuntimeOptions>): Promise<Served> => {
    const served = await serveRuntime({ model: file, device: 'cpu', threads: 1, cacheDir: join(work, 'cache'), log: (l) => logs.push(l), ...options });
    servers.push(served);
    return served;
  };
  let multi: Served;
  let plain: Served;
  let mergedSql: Served;
  let mergedPoem: Served;
  beforeAll(async () => {
    requireBuild();
    multi = await start({ loraModules: [{ name: 'sql', path: sql }, { name: 'poem', path: poem }] });
    plain = await start({});
    mergedSql = await start({ loraModel: sql });
    mergedPoem = await start({ loraModel: poem });
  }, 300_000);
  afterAll(async () => {
    for (const s of servers) await s.close();
    rmSync(work, { recursive: true, force: true });
  });

  const complete = async (s: Served, model: string, prompt: string) => {
    const r = await s.client.completions.create({ model, prompt, max_tokens: TOKENS, temperature: 0 });
    return { text: r.choices[0].text, cached: (r.usage as any)?.prompt_tokens_details?.cached_tokens as number };
  };

  it('lists the adapters as model ids with the base as parent, and logs how they run', async () => {
    const models = (await multi.client.models.list()).data.map((m) => [m.id, (m as any).parent]);
    expect(models).toEqual([[multi.name, null], ['sql', multi.name], ['poem', multi.name]]);
    expect(multi.runtime.loadInfo.adapters).toEqual(['sql', 'poem']);
    expect(logs.join('\n')).toMatch(/LoRA sql \(adapter 1\): applied at run time to 14 tensors \(rank 4, scale 2\)/);
    expect(logs.join('\n')).toMatch(/LoRA poem \(adapter 2\): applied at run time to 6 tensors \(rank 2, scale 2\)/);
  });

  it("each adapter's greedy text equals the same adapter merged; the base id equals the server without adapters", async () => {
    for (const prompt of PROMPTS) {
      const base = await complete(plain, plain.name, prompt);
      const sqlText = await complete(mergedSql, mergedSql.name, prompt);
      const poemText = await complete(mergedPoem, mergedPoem.name, prompt);
      expect(new Set([base.text, sqlText.text, poemText.text]).size).toBe(3); // the adapters matter
      expect((await complete(multi, 'sql', prompt)).text).toBe(sqlText.text);
      expect((await complete(multi, 'poem', prompt)).text).toBe(poemText.text);
      expect((await complete(multi, multi.name, prompt)).text).toBe(base.text);
    }
  }, 120_000);

  it('a batch mixing the base and both adapters gives each row its solo text', async () => {
    const models = [multi.name, 'sql', 'poem', 'sql'];
    const prompt = PROMPTS[1];
    const solo = [];
    for (const m of models) solo.push((await complete(multi, m, `${prompt} (solo)`)).text);
    const before = await multi.runtime.backendStats();
    const together = await Promise.all(models.map((m) => complete(multi, m, `${prompt} (solo)`)));
    const after = await multi.runtime.backendStats();
    expect(together.map((t) => t.text)).toEqual(solo);
    // Batched: more decode rows than decode calls.
    expect(after.decodeRows - before.decodeRows).toBeGreaterThan(after.decodeCalls - before.decodeCalls);
  }, 120_000);

  it('a prompt cached under one model id is recomputed under another, and reused under the same', async () => {
    const prompt = "Cached once per model id: a prompt nobody sent before, long enough to reuse";
    const expected = (await complete(mergedPoem, mergedPoem.name, prompt)).text;
    await complete(multi, multi.name, prompt);
    await complete(multi, 'sql', prompt);
    const first = await complete(multi, 'poem', prompt);
    expect(first).toEqual({ text: expected, cached: 0 });
    const again = await complete(multi, 'poem', prompt);
    expect(again.text).toBe(expected);
    expect(again.cached).toBeGreaterThan(10);
  }, 120_000);

  it('--lora-model and --lora-modules together: the base id is the merged model, the adapters apply on top of it', async () => {
    const both = await start({ loraModel: sql, loraModules: [{ name: 'poem', path: poem }] });
    for (const prompt of PROMPTS) {
      expect((await complete(both, both.name, prompt)).text).toBe((await complete(mergedSql, mergedSql.name, prompt)).text);
      expect((await complete(both, 'poem', prompt)).text).not.toBe((await complete(multi, 'poem', prompt)).text);
    }
  }, 120_000);

  it('a bad --lora-modules value is a usage error of the CLI; a missing adapter or a name clash fails the start naming it', async () => {
    const bad = await runCli(['serve', file, '--lora-modules', 'sql']);
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(/--lora-modules sql: expected NAME=PATH/);
    const missing = await runCli(['serve', file, '--lora-modules', `sql=${join(work, 'nope')}`, '--host', '127.0.0.1', '--port', '0']);
    expect(missing.code).not.toBe(0);
    expect(missing.output).toContain(`--lora-modules sql=${join(work, 'nope')}: no such file or directory.`);
    const cacheBefore = process.env.EDGELLM_CACHE;
    process.env.EDGELLM_CACHE = join(work, 'cache'); // the CLI child converts into the test's cache
    const clash = await runCli(['serve', file, '--lora-modules', `${multi.name}=${sql}`, '--host', '127.0.0.1', '--port', '0']).finally(() => {
      if (cacheBefore === undefined) delete process.env.EDGELLM_CACHE;
      else process.env.EDGELLM_CACHE = cacheBefore;
    });
    expect(clash.code).not.toBe(0);
    expect(clash.output).toContain(`"${multi.name}" is already the base model's name`);
  }, 120_000);

  it('an unknown model id is a 404 in the OpenAI format naming the served ids', async () => {
    const response = await fetch(`${multi.server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'nope', prompt: 'x', max_tokens: 1 }),
    });
    expect(response.status).toBe(404);
    const body = await response.json();
    expect(body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    expect(body.error.message).toMatch(new RegExp(`This server serves: ${multi.name}, sql, poem`));
  });
});
