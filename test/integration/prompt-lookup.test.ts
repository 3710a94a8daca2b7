/**
 * Prompt-lookup speculative decoding through the real server (CLI, inference thread,
 * onnxruntime-node), over loopback HTTP with the official openai client: a server with
 * `--prompt-lookup` must stream exactly what a server without it streams, delta for delta (each
 * delta is one token), with the same usage, while its /metrics show drafts accepted.
 */
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, SMOLLM2, STORIES, TINY_RANDOM } from '../helpers/shared-models.js';
import { until } from '../helpers/until.js';

async function streamed(client: OpenAI, body: OpenAI.Completions.CompletionCreateParamsNonStreaming) {
  const pieces: string[] = [];
  let usage: unknown;
  let finish: string | null = null;
  for await (const chunk of await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) {
    if (chunk.choices[0]?.text) pieces.push(chunk.choices[0].text);
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  return { pieces, usage, finish };
}

async function counter(server: CliServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

function pair(label: string, model: string | undefined, args: string[], prompts: Array<{ prompt: string; max_tokens: number; stop?: string[] }>) {
  describe.skipIf(!model)(`prompt lookup on ${label}`, () => {
    let plain: CliServer;
    let lookup: CliServer;
    const clients: OpenAI[] = [];
    beforeAll(async () => {
      plain = await startCli([model!, ...args, '--model-name', 'm', '--threads', '1', '--cache-max-bytes', '0', '--prompt-lookup', '0']);
      lookup = await startCli([model!, ...args, '--model-name', 'm', '--threads', '1', '--cache-max-bytes', '0', '--prompt-lookup', '6']);
      for (const server of [plain, lookup]) clients.push(new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 }));
    }, 180_000);
    afterAll(async () => {
      await plain?.stop();
      await lookup?.stop();
    });

    it('streams what plain greedy decoding streams, token for token, with drafts accepted', async () => {
      await until(() => /prompt lookup: /.test(lookup.output()));
      expect(lookup.output()).toMatch(/prompt lookup: up to 6 draft tokens per step/);
      for (const p of prompts) {
        const body = { model: 'm', temperature: 0, ...p };
        const a = await streamed(clients[0], body);
        const b = await streamed(clients[1], body);
        expect(b).toEqual(a);
        expect(a.pieces.length).toBeGreaterThan(8);
      }
      const accepted = await counter(lookup, 'edgellm:spec_decode_num_accepted_tokens_total');
      const drafted = await counter(lookup, 'edgellm:spec_decode_num_draft_tokens_total');
      expect(accepted).toBeGreaterThan(0);
      expect(drafted).toBeGreaterThanOrEqual(accepted);
      // the plain server has no speculation counters at all
      expect(await counter(plain, 'edgellm:spec_decode_num_draft_tokens_total')).toBeNaN();
    }, 180_000);
  });
}

const stories = sharedModel(STORIES);
pair('stories260K (fp32)', stories, ['--dtype', 'fp32'], [
  { prompt: 'Once upon a time', max_tokens: 160 },
  { prompt: 'Lily and Tom went to the park. Lily and Tom', max_tokens: 96, stop: ['park. Lily'] },
]);

// onnxruntime-genai's export takes several tokens only on an empty cache: a drafted step runs one call per token
// (its random weights loop on these prompts, which drafts copy).
pair('tiny-random genai export (fp32)', sharedModel(TINY_RANDOM), ['--dtype', 'fp32'], [{ prompt: 'Once upon a time', max_tokens: 64 }, { prompt: 'a b a b a b a b', max_tokens: 48 }]);

// The real chat model's Q4_1 weights, exact (float activations): its French reply loops, which drafts copy.
const smol = sharedModel(SMOLLM2);
const FRANCE =
  '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
  '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n';
pair('SmolLM2-135M Q4_1 GGUF (exact)', smol && join(smol, 'SmolLM2-135M-Instruct.Q4_1.gguf'), [], [{ prompt: FRANCE, max_tokens: 128 }]);

// int8 activations (llama.cpp's arithmetic): any rounding difference between a drafted step and single steps
// can change a greedy reply, so drafts run only because the load found the exported graph row-invariant
// (the GroupQueryAttention rewrite is not, and is turned down for it).
// (Its France reply is one short sentence, so code and a list to copy here.)
const ask = (question: string) => FRANCE.replace('What is the capital of France?', question);
pair('SmolLM2-135M Q4_1 GGUF (int8 activations)', smol && join(smol, 'SmolLM2-135M-Instruct.Q4_1.gguf'), ['--gguf-accuracy', 'int8'], [
  { prompt: ask('Write a Python function that returns the factorial of n.'), max_tokens: 96 },
  { prompt: ask('Repeat this list exactly, one item per line: apple, banana, cherry, date, elderberry, fig, grape.'), max_tokens: 48 },
]);
