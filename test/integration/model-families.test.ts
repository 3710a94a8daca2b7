/**
 * The model-family matrix: every common ONNX export shape, loaded the way the Node runtime loads it
 * (onnxruntime-node, the attention rewrite where the model qualifies, the step probe), runs prefix
 * reuse, a session, chunked prefill, a concurrent batch and beam search through the engine, and must
 * give the greedy tokens of a reference that prefills every prompt whole, one request at a time,
 * with no cache, its KV copied into a new present every step; the served engine writes KV in place
 * wherever the graph has GroupQueryAttention (the step plan says which). Families: the shared fixtures (stories260K fp32 / weight-only q8 / q4; the
 * onnxruntime-genai export of tiny-random Llama in fp32 with external data and fp16 with an fp16 KV
 * cache) and the small exports of test/fixtures/families (make-families.py: tied and untied
 * embeddings, dynamic q8, external data, qwen2 biases, Llama-3 rotary scaling, and the
 * GroupQueryAttention wiring of onnxruntime-genai's builder, which batches right-padded). The
 * real-weights row converts SmolLM2-135M-Instruct's Q4_1 GGUF (../shared/models) as `edgellm serve`
 * does by default and runs it through the same scenarios.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveGgufModel } from '../../src/adapters/node/gguf-model.js';
import { loadCausalLM } from '../../src/adapters/node/ort-model.js';
import { loadTokenizer } from '../../src/adapters/node/tokenizer.js';
import { modelShape } from '../../src/model/model-config.js';
import type { OrtCausalLM } from '../../src/onnx/ort-causal-lm.js';
import { createEngine } from '../../src/runtime/engine.js';
import type { GenerateRequest, GenerationEvent, InferenceRuntime } from '../../src/runtime/types.js';
import { SHARED_MODELS, sharedModel, SMOLLM2, STORIES, TINY_RANDOM } from '../helpers/shared-models.js';

const FAMILIES = fileURLToPath(new URL('../fixtures/families/', import.meta.url));
const shared = (name: string) => join(SHARED_MODELS, name);

interface Family {
  name: string;
  dir: string;
  file: string;
  /** What the startup log must say about the step plan. */
  steps: RegExp;
  /**
   * false for dynamic int8: its activations are quantized with one scale per call, so a row's
   * logits depend on the rows batched with it (ARCHITECTURE.md, "What each graph can take"); its batch must run,
   * not match.
   */
  batchInvariant?: boolean;
  /** What the loaded model must say about its attention (the rewrite applied). */
  attention?: RegExp;
  /** onnxruntime threads (default: onnxruntime's). */
  threads?: number;
}

const IN_PLACE = '; KV written in place \\(probe logits within 0\\.0 of the copying form\\)$';
const COPIED = '; KV copied into a new present each step \\(the graph has no GroupQueryAttention\\)$';
const ANY = new RegExp('^any number of tokens per step; decode steps batched' + IN_PLACE);
const ANY_COPIED = new RegExp('^any number of tokens per step; decode steps batched' + COPIED);
const RIGHT_PADDED = new RegExp("^any number of tokens per step; decode steps batched, right-padded \\(left padding: a padded row's logits are off by .*position 0\\)" + IN_PLACE);
const GENAI = new RegExp('^prefill on an empty cache, then one token per step \\(2 tokens on a 1-token cache failed: .*Expand.*; decode steps batched' + COPIED);

const families: Family[] = [
  { name: 'stories260K fp32 (optimum-style, tied)', dir: shared(STORIES), file: 'model.onnx', steps: ANY_COPIED },
  { name: 'stories260K weight-only q8', dir: shared(STORIES), file: 'model_quantized.onnx', steps: ANY_COPIED },
  { name: 'stories260K q4 MatMulNBits', dir: shared(STORIES), file: 'model_q4.onnx', steps: ANY_COPIED },
  { name: 'genai export fp32, external data', dir: shared(TINY_RANDOM), file: 'model.onnx', steps: GENAI },
  { name: 'genai export fp16 (fp16 KV)', dir: shared(TINY_RANDOM), file: 'model_fp16.onnx', steps: GENAI },
  { name: 'llama fp32, tied, GQA rewrite', dir: join(FAMILIES, 'llama'), file: 'model.onnx', steps: ANY },
  { name: 'llama dynamic q8', dir: join(FAMILIES, 'llama'), file: 'model_quantized.onnx', steps: ANY, batchInvariant: false },
  { name: 'llama q4', dir: join(FAMILIES, 'llama'), file: 'model_q4.onnx', steps: ANY },
  { name: 'llama untied fp32', dir: join(FAMILIES, 'llama-untied'), file: 'model.onnx', steps: ANY },
  { name: 'llama untied weight-only q8', dir: join(FAMILIES, 'llama-untied'), file: 'model_quantized.onnx', steps: ANY },
  { name: 'llama external data', dir: join(FAMILIES, 'llama-external'), file: 'model.onnx', steps: ANY },
  { name: 'qwen2 (attention biases)', dir: join(FAMILIES, 'qwen2'), file: 'model.onnx', steps: ANY },
  { name: 'llama3 rotary scaling', dir: join(FAMILIES, 'llama3-rope'), file: 'model.onnx', steps: ANY_COPIED },
  { name: 'genai GroupQueryAttention (seqlens_k from the mask)', dir: join(FAMILIES, 'genai-gqa'), file: 'model.onnx', steps: RIGHT_PADDED },
];

const json = (path: string) => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {});

/** An engine on one family's model, as the Node runtime builds it (in this thread). */
async function open(family: Family, engine: { prefillChunk: number; cacheMaxBytes: number; maxConcurrent: number }, kvInPlace = true) {
  const config = json(join(family.dir, 'config.json'));
  const shape = modelShape(config, json(join(family.dir, 'generation_config.json')));
  const model = await loadCausalLM({
    path: join(family.dir, 'onnx', family.file),
    executionProviders: ['cpu'],
    threads: family.threads,
    contextLength: shape.contextLength,
    hiddenSize: shape.hiddenSize,
    attention: typeof shape.attention === 'string' ? undefined : shape.attention,
    kvInPlace,
  });
  const tokenizer = await loadTokenizer(family.dir, shape.eosTokenIds);
  return { model, runtime: createEngine({ backend: model, tokenizer, modelNames: ['m'], ...engine }) };
}

const greedy = (r: Partial<GenerateRequest>): GenerateRequest => ({
  input: { kind: 'text', text: 'Once upon a time' },
  sampling: { temperature: 0 },
  stop: [],
  ignoreEos: true,
  n: 1,
  maxTokens: 4,
  ...r,
});

async function tokens(runtime: InferenceRuntime, request: GenerateRequest): Promise<number[]> {
  const out: number[] = [];
  for await (const event of runtime.generate(request) as AsyncIterable<GenerationEvent>) if (event.type === 'delta') out.push(...event.tokens);
  return out;
}

const PREFIX = 'Once upon a time there was a little dog who';
const SUFFIXES = [' liked to run in the park', ' lived in a big red house', ' found a ball'];
const TURNS = ['Tell me a story about a cat.', 'What did the cat eat?', 'And then what happened next?'];

/** Every scenario in order; `concurrent` runs the batch scenario's requests at once. */
async function scenarios(runtime: InferenceRuntime, concurrent: boolean): Promise<Record<string, number[][]>> {
  const prefix: number[][] = [];
  for (const suffix of SUFFIXES) prefix.push(await tokens(runtime, greedy({ input: { kind: 'text', text: PREFIX + suffix } })));
  const session: number[][] = [];
  for (const [turn, text] of TURNS.entries()) {
    const control = { id: 'family', start: turn === 0, end: turn === TURNS.length - 1 };
    session.push(await tokens(runtime, greedy({ input: { kind: 'text', text }, session: control })));
  }
  const batchRequests = SUFFIXES.map((suffix, i) => greedy({ input: { kind: 'text', text: `${'The sun '.repeat(i + 1)}${suffix}` }, maxTokens: 5 }));
  const batch: number[][] = concurrent
    ? await Promise.all(batchRequests.map((r) => tokens(runtime, r)))
    : await batchRequests.reduce<Promise<number[][]>>(async (acc, r) => [...(await acc), await tokens(runtime, r)], Promise.resolve([]));
  const beams = [await tokens(runtime, greedy({ input: { kind: 'text', text: PREFIX + SUFFIXES[0] }, sampling: { temperature: 0, numBeams: 2 } }))];
  return { prefix, session, batch, beams };
}

/** Runs the scenarios on a whole-prefill, cache-less reference and on a served engine, and compares. */
async function checkFamily(family: Family, opened: OrtCausalLM[]) {
  // requests one at a time (2: a beam search is 2 sequences), KV copied every step
  const reference = await open(family, { prefillChunk: 100_000, cacheMaxBytes: 0, maxConcurrent: 2 }, false);
  const served = await open(family, { prefillChunk: 3, cacheMaxBytes: 64 * 1024 * 1024, maxConcurrent: 8 });
  opened.push(reference.model, served.model);
  expect(served.model.steps).toMatch(family.steps);
  if (family.attention) expect(served.model.attention).toMatch(family.attention);
  const want = await scenarios(reference.runtime, false);
  const got = await scenarios(served.runtime, true);
  if (family.batchInvariant === false) {
    // Its rows depend on how the prompt is split into calls (chunked prefill vs whole): the lengths must agree.
    expect(got.batch.map((t) => t.length)).toEqual(want.batch.map((t) => t.length));
    got.batch = want.batch;
  }
  expect(got).toEqual(want);
  // Embeddings from the model's hidden state work on every family.
  const [vector] = (await served.runtime.embed({ input: ['Once upon a time'] })).embeddings;
  expect(vector).toHaveLength(served.model.info.hiddenSize);
  expect(vector.every(Number.isFinite)).toBe(true);
  // The served model really batched the concurrent requests where the graph allows it; a graph
  // whose rows depend on their neighbours (dynamic int8 as exported) runs each sequence alone.
  if (family.batchInvariant === false) expect(served.model.counters.decodeRows).toBe(served.model.counters.decodeCalls);
  else expect(served.model.counters.decodeRows).toBeGreaterThan(served.model.counters.decodeCalls);
  await Promise.all([reference.model.dispose(), served.model.dispose()]);
  opened.length = 0;
}

describe('model families', () => {
  const opened: OrtCausalLM[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((m) => m.dispose()));
  });

  for (const family of families) {
    const present = existsSync(join(family.dir, 'onnx', family.file));
    if (!present) console.warn(`[edgellm tests] skipping ${family.name}: ${family.dir} not found`);
    it.skipIf(!present)(`${family.name}: chunked prefill, prefix reuse, a session, a batch and beams match a whole-prefill reference`, () =>
      checkFamily(family, opened));
  }
});

/**
 * The real-weights row: SmolLM2-135M-Instruct's Q4_1 GGUF converted the way `edgellm serve
 * model.gguf` converts it by default (exact 4-bit MatMulNBits plus block offsets, Q8_0 embeddings),
 * with the GroupQueryAttention rewrite, on one onnxruntime thread (the suite runs two files at once).
 */
const smollm2 = sharedModel(SMOLLM2);
describe.skipIf(!smollm2)('model families: real weights', () => {
  const opened: OrtCausalLM[] = [];
  const cache = mkdtempSync(join(tmpdir(), 'edgellm-families-gguf-'));
  afterAll(async () => {
    await Promise.all(opened.map((m) => m.dispose()));
    rmSync(cache, { recursive: true, force: true });
  });

  it('SmolLM2-135M-Instruct Q4_1 GGUF (exact 4-bit): chunked prefill, prefix reuse, a session, a batch and beams match a whole-prefill reference', async () => {
    const gguf = join(smollm2!, 'SmolLM2-135M-Instruct.Q4_1.gguf');
    const { dir, dtype } = await resolveGgufModel(gguf, 'q4', { cacheDir: cache, log: () => {}, progress: false });
    expect(dtype).toBe('q4');
    await checkFamily({ name: 'SmolLM2 Q4_1', dir, file: 'model_q4.onnx', steps: ANY, attention: /^GroupQueryAttention \(30 layers/, threads: 1 }, opened);
  }, 120_000);
});
