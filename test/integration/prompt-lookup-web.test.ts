/**
 * Prompt lookup in the web adapter (onnxruntime-web's wasm build, here in Node): the in-thread
 * backend returns a drafted step's rows through the same OrtCausalLM, and greedy output is the
 * same token for token as without drafts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { createWebRuntimeOn, type OrtWeb } from '../../src/adapters/web/runtime.js';
import type { GenerateRequest } from '../../src/runtime/types.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const dir = sharedModel(STORIES);

async function webRuntime(promptLookup: number) {
  return createWebRuntimeOn(async () => ortWeb as unknown as OrtWeb, {
    model: STORIES,
    baseUrl: 'http://models.test/',
    device: 'wasm',
    dtype: 'fp32',
    promptLookup,
    fetch: async (input) => {
      const file = join(dir!, String(input).replace(`http://models.test/${STORIES}/`, ''));
      return existsSync(file) ? new Response(readFileSync(file)) : new Response('not found', { status: 404 });
    },
  });
}

async function greedy(runtime: Awaited<ReturnType<typeof webRuntime>>, text: string, maxTokens: number) {
  const request = { input: { kind: 'text', text }, sampling: { temperature: 0 }, stop: [], ignoreEos: false, n: 1, maxTokens } as unknown as GenerateRequest;
  const tokens: number[] = [];
  for await (const event of runtime.generate(request)) if (event.type === 'delta') tokens.push(...event.tokens);
  return tokens;
}

describe.skipIf(!dir)('prompt lookup in the web runtime (stories260K fp32, wasm)', () => {
  it('gives the tokens plain greedy decoding gives, with drafts accepted', async () => {
    const plain = await webRuntime(0);
    const lookup = await webRuntime(6);
    try {
      for (const [text, max] of [['Once upon a time', 160], ['Lily and Tom went to the park. Lily and Tom', 96]] as const) {
        expect(await greedy(lookup, text, max)).toEqual(await greedy(plain, text, max));
      }
      const spec = lookup.metrics!()!.specDecode!;
      expect(spec.acceptedTokens).toBeGreaterThan(0);
      expect(plain.metrics!()!.specDecode).toBeUndefined();
    } finally {
      await plain.close();
      await lookup.close();
    }
  }, 120_000);
});
