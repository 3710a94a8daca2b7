/**
 * `loraModules` of the web adapter (a Worker's LORA_MODULES) on onnxruntime-web's wasm build (here in
 * Node): a tiny GGUF and a PEFT adapter fetched like model files. The adapter's greedy tokens equal
 * the Node runtime's with the same adapter merged (`--lora-model`), and the base id's equal the Node
 * runtime's without adapters.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../src/adapters/node/runtime.js';
import { createWebRuntimeOn, type OrtWeb } from '../../src/adapters/web/runtime.js';
import type { GenerateRequest, InferenceRuntime } from '../../src/runtime/types.js';
import { requireBuild } from '../helpers/cli-server.js';
import { tinyGguf } from '../helpers/gguf-reference.js';
import { decoderModules, randomPairs, writePeftDir } from '../helpers/lora-fixtures.js';

const PROMPT = 'Adapters in a Worker';

async function greedy(runtime: InferenceRuntime, model: string): Promise<number[]> {
  const request = { model, input: { kind: 'text', text: PROMPT }, sampling: { temperature: 0 }, stop: [], ignoreEos: true, n: 1, maxTokens: 10 } as unknown as GenerateRequest;
  const tokens: number[] = [];
  for await (const event of runtime.generate(request)) if (event.type === 'delta') tokens.push(...event.tokens);
  return tokens;
}

describe('loraModules in the web runtime (wasm)', () => {
  const work = mkdtempSync(join(tmpdir(), 'edgellm-lora-web-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("serves a fetched PEFT adapter as a model id: its tokens equal it merged on Node, the base id's the plain base's", async () => {
    requireBuild();
    const model = tinyGguf('llama', { weights: 'Q4_0' }, { metadata: true });
    const file = join(work, 'tiny.gguf');
    writeFileSync(file, model.bytes);
    const sql = writePeftDir(join(work, 'sql'), randomPairs(decoderModules(model.spec, [0, 1], 256), 4, 31, { std: 0.3 }), 4, 8);
    const files: Record<string, Uint8Array> = {
      'http://models.test/tiny.gguf': model.bytes,
      'http://models.test/adapters/sql/adapter_config.json': readFileSync(join(sql, 'adapter_config.json')),
      'http://models.test/adapters/sql/adapter_model.safetensors': readFileSync(join(sql, 'adapter_model.safetensors')),
    };
    const requested: string[] = [];
    const web = await createWebRuntimeOn(async () => ortWeb as unknown as OrtWeb, {
      model: 'tiny.gguf', baseUrl: 'http://models.test/', device: 'wasm', maxModelBytes: 50e6,
      loraModules: [{ name: 'sql', path: 'adapters/sql' }],
      fetch: async (input) => {
        requested.push(String(input));
        const bytes = files[String(input)];
        return bytes ? new Response(bytes as unknown as BodyInit) : new Response('missing', { status: 404 });
      },
    });
    const node = async (loraModel?: string) =>
      createNodeRuntime({ model: file, device: 'cpu', threads: 1, cacheDir: join(work, 'cache'), log: () => {}, ...(loraModel ? { loraModel } : {}) });
    const merged = await node(sql);
    const plain = await node();
    try {
      expect(requested.sort()).toEqual(Object.keys(files).sort());
      expect(web.models().map((m) => [m.id, m.parent])).toEqual([['tiny', undefined], ['sql', 'tiny']]);
      const sqlTokens = await greedy(web, 'sql');
      const baseTokens = await greedy(web, 'tiny');
      expect(sqlTokens).not.toEqual(baseTokens);
      expect(sqlTokens).toEqual(await greedy(merged, 'tiny'));
      expect(baseTokens).toEqual(await greedy(plain, 'tiny'));
    } finally {
      await web.close();
      await merged.close();
      await plain.close();
    }
  }, 300_000);

  it('refuses loraModules on an ONNX model folder, and names a missing adapter', async () => {
    const options = { baseUrl: 'http://models.test/', device: 'wasm' as const, fetch: async () => new Response('missing', { status: 404 }) };
    await expect(createWebRuntimeOn(async () => ortWeb as unknown as OrtWeb, { ...options, model: 'stories', loraModules: [{ name: 'a', path: 'x' }] })).rejects.toThrow(
      /loraModules need a \.gguf model; stories is an ONNX model folder/,
    );
    await expect(createWebRuntimeOn(async () => ortWeb as unknown as OrtWeb, { ...options, model: 'm.gguf', loraModules: [{ name: 'a', path: 'x' }] })).rejects.toThrow(
      'LoRA a: could not fetch http://models.test/x/adapter_config.json: HTTP 404.',
    );
  });
});
