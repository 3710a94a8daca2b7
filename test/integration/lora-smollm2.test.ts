/**
 * `edgellm serve SmolLM2-135M-Instruct.Q4_1.gguf --lora_model DIR` on loopback with the openai
 * client: a zero adapter answers llama.cpp's greedy text of the base model; a random PEFT adapter
 * on the attention of two layers changes it, and the text equals the greedy decode of a graph
 * built from the test's own float64 reference merge (a few tokens, to stay fast).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../src/adapters/node/tokenizer.js';
import { dequantize, toBlockQuant } from '../../src/gguf/quants.js';
import { readGguf } from '../../src/gguf/reader.js';
import { ggufModelJson } from '../../src/onnx/gguf-import.js';
import { buildDecoderInMemory, decoderSpec, type SourceTensor } from '../../src/onnx/gguf-decoder-graph.js';
import { startCli } from '../helpers/cli-server.js';
import { decoderModules, randomPairs, referenceMerge, writePeftDir } from '../helpers/lora-fixtures.js';
import { sharedModel } from '../helpers/shared-models.js';

const dir = sharedModel('SmolLM2-135M-Instruct');
const GGUF = dir && join(dir, 'SmolLM2-135M-Instruct.Q4_1.gguf');
const TOKENS = 6;
const RANK = 4;
const ALPHA = 8;

describe.skipIf(!dir)('--lora_model on the real SmolLM2-135M-Instruct GGUF', () => {
  const reference = dir ? JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')).chat[0] : undefined;
  const work = mkdtempSync(join(tmpdir(), 'edgellm-lora-'));
  const cacheBefore = process.env.EDGELLM_CACHE;
  process.env.EDGELLM_CACHE = join(work, 'cache'); // the CLI child inherits it
  afterAll(() => {
    if (cacheBefore === undefined) delete process.env.EDGELLM_CACHE;
    else process.env.EDGELLM_CACHE = cacheBefore;
    rmSync(work, { recursive: true, force: true });
  });

  const gguf = dir ? readGguf(new Uint8Array(readFileSync(GGUF!))) : undefined!;
  const spec = dir ? decoderSpec(ggufModelJson(gguf).config) : undefined!;
  const modules = dir ? decoderModules(spec, [0, 1], 0, ['q', 'k', 'v', 'o']) : [];

  const ask = async (adapter: string) => {
    const server = await startCli([GGUF!, '--lora_model', adapter, '--only_cpu'], 240_000);
    try {
      const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
      const completion = await client.chat.completions.create({
        model: 'SmolLM2-135M-Instruct.Q4_1', messages: [{ role: 'user', content: reference.prompt }], temperature: 0, max_tokens: TOKENS,
      });
      return { text: completion.choices[0].message.content ?? '', log: server.output() };
    } finally {
      await server.stop();
    }
  };

  it("a zero adapter (PEFT's initial B = 0) gives the base model's greedy text (llama.cpp's)", async () => {
    const adapter = writePeftDir(join(work, 'zero'), randomPairs(modules, RANK, 1, { zero: true }), RANK, ALPHA);
    const { text, log } = await ask(adapter);
    expect(log).toMatch(/LoRA zero: merged in float32 into 0 tensors/);
    expect(text.length).toBeGreaterThan(5);
    expect(reference.reply.startsWith(text)).toBe(true);
  }, 300_000);

  it("a random adapter changes the text, which equals the reference merge's greedy text", async () => {
    const pairs = randomPairs(modules, RANK, 2, { std: 0.3 });
    const adapter = writePeftDir(join(work, 'random'), pairs, RANK, ALPHA);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(dir!, f), join(adapter, f));
    const { text, log } = await ask(adapter);
    expect(log).toMatch(/LoRA random: merged in float32 into 8 tensors \(rank 4, scale 2\): blk\.0\.attn_q\.weight/);

    // The reference: the base's tensors with the test's merge, built and decoded greedily in process.
    const tensors = referenceMerge(spec, gguf.tensors, dequantize as (t: SourceTensor) => Float32Array, pairs, ALPHA / RANK);
    const built = buildDecoderInMemory(spec, tensors, { dequantize: dequantize as never, toBlockQuant: toBlockQuant as never });
    const session = await ort.InferenceSession.create(built.model, { externalData: [{ path: built.dataName, data: built.data }] });
    const ids = [...reference.prompt_ids] as number[];
    try {
      for (let step = 0; step < TOKENS; step++) {
        const feeds: Record<string, ort.Tensor> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
          position_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(i)), [1, ids.length]),
          logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(BigInt(ids.length)), [1]),
        };
        for (let l = 0; l < spec.layers; l++) {
          for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, spec.kvHeads, 0, spec.headDim]);
        }
        const logits = (await session.run(feeds)).logits.data as Float32Array;
        const last = logits.subarray(logits.length - spec.vocab);
        let best = 0;
        for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i;
        ids.push(best);
      }
    } finally {
      await session.release();
    }
    const tokenizer = await loadTokenizer(dir!, []);
    const expected = tokenizer.decode(ids.slice(reference.prompt_ids.length));
    expect(reference.reply.startsWith(text)).toBe(false);
    expect(text).toBe(expected);
  }, 300_000);
});
