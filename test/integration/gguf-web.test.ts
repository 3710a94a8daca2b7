/**
 * The web adapter on a .gguf URL: fetched, converted in memory by the same builder, run on
 * onnxruntime-web's wasm build (here in Node); its greedy chat reply starts as llama.cpp's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { createWebRuntimeOn, type OrtWeb } from '../../src/adapters/web/runtime.js';
import type { GenerateRequest, PromptInput } from '../../src/runtime/types.js';
import { sharedModel } from '../helpers/shared-models.js';

const dir = sharedModel('SmolLM2-135M-Instruct');

describe.skipIf(!dir)('createWebRuntime with a .gguf URL (SmolLM2 Q4_1, wasm)', () => {
  it("converts in memory and greedy-decodes llama.cpp's reply", async () => {
    const bytes = readFileSync(join(dir!, 'SmolLM2-135M-Instruct.Q4_1.gguf'));
    const reference = JSON.parse(readFileSync(join(dir!, 'reference.json'), 'utf8'));
    const requested: string[] = [];
    const runtime = await createWebRuntimeOn(async () => ortWeb as unknown as OrtWeb, {
      model: 'models/SmolLM2-135M-Instruct.Q4_1.gguf',
      baseUrl: 'http://models.test/',
      device: 'wasm',
      // The estimate for this file on wasm is about 540 MB (file, converted graph, wasm growth: memory-estimate.ts).
      maxModelBytes: 600e6,
      fetch: async (input) => {
        requested.push(String(input));
        return new Response(bytes, { headers: { 'content-length': String(bytes.length) } });
      },
    });
    try {
      expect(requested).toEqual(['http://models.test/models/SmolLM2-135M-Instruct.Q4_1.gguf']);
      expect(runtime.loadInfo).toMatchObject({ dtype: 'q4', device: 'wasm', modelNames: ['SmolLM2-135M-Instruct.Q4_1'] });
      const chat = reference.chat[1];
      const input: PromptInput = { kind: 'messages', messages: [{ role: 'user', content: chat.prompt }] };
      expect(await runtime.tokenize(undefined, input)).toEqual(chat.prompt_ids);
      const request = { input, sampling: { temperature: 0 }, stop: [], ignoreEos: false, n: 1, maxTokens: 4 } as unknown as GenerateRequest;
      const tokens: number[] = [];
      for await (const event of runtime.generate(request)) if (event.type === 'delta') tokens.push(...event.tokens);
      expect(tokens).toEqual(chat.reply_ids.slice(0, 4));
    } finally {
      await runtime.close();
    }
  }, 300_000);
});
