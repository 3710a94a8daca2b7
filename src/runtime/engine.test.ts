import { describe, expect, it } from 'vitest';
import {
  attempt, BOS, collect, EOS, FakeEmbeddingBackend, FakeTokenizer, finishOf, flatLogits, ids, logitsFrom, makeEngine,
  meanEmbedding, MODEL, NUMBER_WORDS, request, settle, textOf, tokensOf, usageOf, VOCAB_SIZE, wordId, type LogitsFn,
} from '../../test/fixtures/fake-backend.js';
import type { GenerationEvent } from './types.js';

const w = wordId;
/** Flat over the number words only (EOS and the rest impossible): sampling never stops early. */
const numbersOnly: LogitsFn = (_history, vocabSize) => {
  const out = new Float32Array(vocabSize).fill(-Infinity);
  for (const word of NUMBER_WORDS) out[w(word)] = 0;
  return out;
};
/** A logits table by last token; anything not listed predicts EOS. Others get `base`. */
function table(rows: Record<number, Record<number, number>>, base = -30): LogitsFn {
  return (history, vocabSize) => logitsFrom(vocabSize, rows[history[history.length - 1]] ?? { [EOS]: 0 }, base);
}
const types = (events: GenerationEvent[]) => events.map((e) => e.type);

describe('greedy generation', () => {
  it('emits start, deltas, finish, usage with the exact continuation and counts', async () => {
    const { engine, backend } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'one two', maxTokens: 3 })));
    expect(events).toEqual([
      { type: 'start', promptTokens: 3, promptText: 'one two', cachedTokens: 0 },
      { type: 'delta', index: 0, text: ' three', tokens: [w('three')] },
      { type: 'delta', index: 0, text: ' four', tokens: [w('four')] },
      { type: 'delta', index: 0, text: ' five', tokens: [w('five')] },
      { type: 'finish', index: 0, reason: 'length' },
      { type: 'usage', promptTokens: 3, completionTokens: 3 },
    ]);
    // The prompt once in full, then one token per step; the last token is never forwarded.
    expect(backend.forwards).toEqual([
      [{ seq: 1, tokens: [BOS, w('one'), w('two')] }],
      [{ seq: 1, tokens: [w('three')] }],
      [{ seq: 1, tokens: [w('four')] }],
    ]);
    await settle();
    expect(backend.live.size).toBe(0);
    expect(backend.releases).toEqual([1]);
  });

  it("finishes with 'stop' at EOS, which is neither in the text nor counted nor forwarded", async () => {
    const { engine, backend } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'eighteen', maxTokens: 10 })));
    expect(textOf(events)).toBe(' nineteen twenty');
    expect(tokensOf(events)).toEqual([w('nineteen'), w('twenty')]);
    expect(finishOf(events)).toBe('stop');
    expect(usageOf(events)).toEqual({ type: 'usage', promptTokens: 2, completionTokens: 2 });
    expect(types(events)).toEqual(['start', 'delta', 'delta', 'finish', 'usage']);
    expect(backend.forwardedItems.map((i) => i.tokens)).toEqual([[BOS, w('eighteen')], [w('nineteen')], [w('twenty')]]);
  });

  it("without maxTokens runs to the context length and finishes with 'length'", async () => {
    const { engine, backend } = makeEngine({ backend: { contextLength: 16 } });
    const events = await collect(() => engine.generate(request({ prompt: 'one' })));
    expect(usageOf(events)).toEqual({ type: 'usage', promptTokens: 2, completionTokens: 14 });
    expect(textOf(events)).toBe(' ' + NUMBER_WORDS.slice(1, 15).join(' '));
    expect(finishOf(events)).toBe('length');
    // 2 prompt + 13 forwarded generated tokens: the sequence never exceeded the context.
    expect(backend.forwards.length).toBe(14);
    expect(backend.forwardedItems.reduce((n, i) => n + i.tokens.length, 0)).toBe(15);
  });

  it('accepts token-id prompts and renders messages with the chat template', async () => {
    const { engine, backend, tokenizer } = makeEngine();
    const byIds = await collect(() => engine.generate(request({ input: { kind: 'tokens', tokens: [w('five')] }, maxTokens: 2 })));
    expect(textOf(byIds)).toBe(' six seven');
    expect(byIds[0]).toEqual({ type: 'start', promptTokens: 1, promptText: 'five', cachedTokens: 0 });
    expect(backend.forwards[0]).toEqual([{ seq: 1, tokens: [w('five')] }]);

    const chat = await collect(() =>
      engine.generate(request({ input: { kind: 'messages', messages: [{ role: 'user', content: 'hello' }] }, maxTokens: 2 })),
    );
    // The model's own template writes BOS, so the engine encodes without special tokens.
    expect(tokenizer.encoded.at(-1)).toEqual({ text: '<s> user : hello assistant :', addSpecialTokens: false });
    expect(backend.forwards[2][0].tokens).toEqual([BOS, ...ids('user : hello assistant :')]);
    expect(textOf(chat)).toBe(' one two');
  });

  it("uses the 'raw' chat template when configured, and 400s for 'model' without a tokenizer template", async () => {
    const raw = makeEngine({ engine: { chatTemplate: 'raw' }, tokenizer: { chatTemplate: false } });
    const messages = [{ role: 'system' as const, content: 'one' }, { role: 'user' as const, content: 'two three' }];
    await collect(() => raw.engine.generate(request({ input: { kind: 'messages', messages }, maxTokens: 1 })));
    expect(raw.backend.forwards[0][0].tokens).toEqual([BOS, ...ids('one two three')]);

    const none = makeEngine({ tokenizer: { chatTemplate: false } });
    const { events, error } = await attempt(() => none.engine.generate(request({ input: { kind: 'messages', messages } })));
    expect(events).toEqual([]);
    expect(error).toMatchObject({ status: 400 });
  });

  it('tokenize() returns what generate() would feed', async () => {
    const { engine } = makeEngine();
    expect(await engine.tokenize(undefined, { kind: 'text', text: 'one two' })).toEqual([BOS, w('one'), w('two')]);
    expect(await engine.tokenize(MODEL, { kind: 'messages', messages: [{ role: 'user', content: 'red' }] })).toEqual([
      BOS, ...ids('user : red assistant :'),
    ]);
    await expect(engine.tokenize('nope', { kind: 'text', text: 'one' })).rejects.toMatchObject({ status: 404 });
  });
});

describe('request validation', () => {
  async function rejected(setup: Parameters<typeof makeEngine>[0], req: ReturnType<typeof request>) {
    const { engine, backend } = makeEngine(setup);
    const { events, error } = await attempt(() => engine.generate(req));
    expect(events).toEqual([]); // rejected before any event
    expect(backend.forwards).toEqual([]);
    return error;
  }

  it('rejects a prompt longer than the context with 400 context_length_exceeded', async () => {
    const error = await rejected({ backend: { contextLength: 8 } }, request({ prompt: 'one two three four five six seven eight nine' }));
    expect(error).toMatchObject({ status: 400, code: 'context_length_exceeded' });
  });

  it('rejects a prompt that fills the context exactly (no room for one token)', async () => {
    const error = await rejected({ backend: { contextLength: 8 } }, request({ prompt: 'one two three four five six seven' }));
    expect(error).toMatchObject({ status: 400, code: 'context_length_exceeded' });
  });

  it('rejects prompt + maxTokens beyond the context, and accepts it at exactly the context', async () => {
    const error = await rejected({ backend: { contextLength: 8 } }, request({ prompt: 'one two', maxTokens: 6 }));
    expect(error).toMatchObject({ status: 400, code: 'context_length_exceeded' });
    expect((error as Error).message).toContain('9 tokens');

    const { engine } = makeEngine({ backend: { contextLength: 8 } });
    const events = await collect(() => engine.generate(request({ prompt: 'one two', maxTokens: 5 })));
    expect(usageOf(events)?.completionTokens).toBe(5);
  });

  it.each([[[BOS, VOCAB_SIZE]], [[BOS, -1]], [[BOS, 1.5]]])('rejects token id outside the vocabulary: %j', async (tokens) => {
    const error = await rejected({}, request({ input: { kind: 'tokens', tokens } }));
    // The runtime names its own field; the handlers say `prompt` or `messages` (wire-fields.ts).
    expect(error).toMatchObject({ status: 400, param: 'input' });
  });

  it('rejects an empty prompt', async () => {
    const error = await rejected({}, request({ input: { kind: 'tokens', tokens: [] } }));
    expect(error).toMatchObject({ status: 400 });
    expect((error as Error).message).toMatch(/empty/);
  });

  it.each([0, 1.5, Number.NaN])('rejects n = %s with 400 and keeps serving', async (n) => {
    const { engine, backend } = makeEngine();
    const { events, error } = await attempt(() => engine.generate(request({ n })));
    expect(events).toEqual([]);
    expect(error).toMatchObject({ status: 400, param: 'n' });
    expect(backend.forwards).toEqual([]);
    expect(textOf(await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 1 }))))).toBe(' two');
  });

  it('rejects a logit_bias outside the vocabulary', async () => {
    const error = await rejected({}, request({ sampling: { temperature: 0, logitBias: { [VOCAB_SIZE]: 1 } } }));
    expect(error).toMatchObject({ status: 400, param: 'logitBias' });
  });

  it('404s an unknown model and 400s an embedding model on generate', async () => {
    const embedding = { backend: new FakeEmbeddingBackend(), tokenizer: new FakeTokenizer(), name: 'embedder', contextLength: 16 };
    expect(await rejected({}, request({ model: 'gpt-4' }))).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    expect(await rejected({ engine: { embedding } }, request({ model: 'embedder' }))).toMatchObject({
      status: 400, code: 'model_not_supported',
    });
  });

  it('serves its model names and the default for an empty or missing name', async () => {
    const { engine } = makeEngine({ engine: { modelNames: ['a', 'b'] } });
    for (const model of [undefined, '', 'a', 'b']) {
      expect(textOf(await collect(() => engine.generate(request({ model, maxTokens: 1 }))))).toBe(' three');
    }
    expect(engine.models().map((m) => [m.id, m.kind, m.contextLength, m.embeddingSize])).toEqual([
      ['a', 'generation', 64, 8], ['b', 'generation', 64, 8],
    ]);
  });

  it('rejects with 503 after close and reports closed', async () => {
    const { engine, backend } = makeEngine();
    expect(engine.status()).toBe('ready');
    await engine.close();
    expect(engine.status()).toBe('closed');
    expect(backend.disposed).toBe(true);
    const { error } = await attempt(() => engine.generate(request()));
    expect(error).toMatchObject({ status: 503 });
    await expect(engine.embed({ input: ['one'] })).rejects.toMatchObject({ status: 503 });
  });
});

describe('stop conditions', () => {
  it('cuts the text before a stop string that spans two tokens', async () => {
    const { engine, backend } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'one two', stop: ['four five'], maxTokens: 10 })));
    expect(textOf(events)).toBe(' three ');
    expect(finishOf(events)).toBe('stop');
    expect(usageOf(events)?.completionTokens).toBe(3);
    // No step after the stop: prompt, three, four forwarded; five ends it.
    expect(backend.forwards.length).toBe(3);
  });

  it('holds back a possible stop prefix and releases it at the end when no stop follows', async () => {
    const { engine } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'eighteen', stop: ['twenty one'], maxTokens: 10 })));
    expect(events.filter((e) => e.type === 'delta')).toEqual([
      { type: 'delta', index: 0, text: ' nineteen', tokens: [w('nineteen')] },
      { type: 'delta', index: 0, text: ' ', tokens: [w('twenty')] }, // "twenty" held back
      { type: 'delta', index: 0, text: 'twenty', tokens: [] }, // released at EOS
    ]);
    expect(finishOf(events)).toBe('stop');

    const atLength = await collect(() => makeEngine().engine.generate(request({ prompt: 'one', stop: ['three four'], maxTokens: 2 })));
    expect(textOf(atLength)).toBe(' two three');
    expect(finishOf(atLength)).toBe('length');
  });

  it('stops at stop_token_ids without emitting the token', async () => {
    const { engine } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'one two', stopTokenIds: [w('five')], maxTokens: 10 })));
    expect(textOf(events)).toBe(' three four');
    expect(finishOf(events)).toBe('stop');
    expect(usageOf(events)?.completionTokens).toBe(2);
  });

  it('ignoreEos keeps generating past EOS', async () => {
    const { engine, backend } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'nineteen', ignoreEos: true, maxTokens: 4 })));
    expect(tokensOf(events)).toEqual([w('twenty'), EOS, w('one'), w('two')]);
    expect(textOf(events)).toBe(' twenty one two');
    expect(finishOf(events)).toBe('length');
    expect(usageOf(events)?.completionTokens).toBe(4);
    expect(backend.forwardedItems.map((i) => i.tokens)).toContainEqual([EOS]);
  });

  it('minTokens suppresses EOS until reached', async () => {
    const logits = table({
      [w('nineteen')]: { [w('twenty')]: 10 },
      [w('twenty')]: { [EOS]: 10, [w('red')]: 5 },
      [w('red')]: { [EOS]: 10, [w('green')]: 5 },
      [w('green')]: { [EOS]: 10, [w('blue')]: 5 },
    });
    const plain = await collect(() => makeEngine({ backend: { logits } }).engine.generate(request({ prompt: 'nineteen', maxTokens: 10 })));
    expect(textOf(plain)).toBe(' twenty');
    const min3 = await collect(() =>
      makeEngine({ backend: { logits } }).engine.generate(request({ prompt: 'nineteen', minTokens: 3, maxTokens: 10 })),
    );
    expect(textOf(min3)).toBe(' twenty red green');
    expect(finishOf(min3)).toBe('stop');
    expect(usageOf(min3)?.completionTokens).toBe(3);
  });

  it('maxTokens 0 answers at once with an empty length finish', async () => {
    const { engine, backend } = makeEngine();
    const events = await collect(() => engine.generate(request({ maxTokens: 0 })));
    expect(types(events)).toEqual(['start', 'finish', 'usage']);
    expect(finishOf(events)).toBe('length');
    expect(usageOf(events)?.completionTokens).toBe(0);
    expect(backend.forwards).toEqual([]);
  });
});

describe('n > 1 and seeds', () => {
  it('prefills the prompt once, forks it n-1 times and feeds each choice its own tokens', async () => {
    const { engine, backend } = makeEngine({ backend: { logits: numbersOnly } });
    const histories = new Map<number, number[]>();
    backend.afterForward = () => {
      for (const seq of backend.live) histories.set(seq, backend.history(seq)!);
    };
    const events = await collect(() =>
      engine.generate(request({ prompt: 'red', n: 3, maxTokens: 5, sampling: { temperature: 1, seed: 42 } })),
    );
    const prefills = backend.forwardedItems.filter((i) => i.tokens.length > 1);
    expect(prefills).toEqual([{ seq: 1, tokens: [BOS, w('red')] }]);
    expect(backend.forks).toEqual([{ src: 1, dst: 2 }, { src: 1, dst: 3 }]);
    expect(backend.forwards.slice(1).every((items) => items.length === 3 && items.every((i) => i.tokens.length === 1))).toBe(true);

    const indices = [...new Set(events.filter((e) => e.type === 'delta').map((e) => (e as { index: number }).index))].sort();
    expect(indices).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      expect(finishOf(events, i)).toBe('length');
      const tokens = tokensOf(events, i);
      expect(tokens).toHaveLength(5);
      // Each backend sequence holds the prompt plus that choice's tokens but the last.
      expect(histories.get(1 + i)).toEqual([BOS, w('red'), ...tokens.slice(0, -1)]);
    }
    expect(new Set([0, 1, 2].map((i) => textOf(events, i))).size).toBe(3);
    expect(usageOf(events)).toEqual({ type: 'usage', promptTokens: 2, completionTokens: 15 });
    expect(types(events).at(-1)).toBe('usage');
    expect(events.filter((e) => e.type === 'finish')).toHaveLength(3);
    await settle();
    expect(backend.live.size).toBe(0);
  });

  it('n choices are reproducible with the same seed', async () => {
    const run = async (seed: number) => {
      const { engine } = makeEngine({ backend: { logits: numbersOnly } });
      const events = await collect(() => engine.generate(request({ n: 3, maxTokens: 6, sampling: { temperature: 1, seed } })));
      return [0, 1, 2].map((i) => textOf(events, i));
    };
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(await run(8)).not.toEqual(a);
  });

  it('n choices finish independently; usage is the sum', async () => {
    // Choice streams differ by seed; EOS has a real chance here so choices end at different steps.
    const logits: LogitsFn = (_h, v) => logitsFrom(v, { [EOS]: 1, [w('red')]: 1, [w('green')]: 1 }, -Infinity);
    const { engine, backend } = makeEngine({ backend: { logits } });
    const events = await collect(() => engine.generate(request({ n: 4, maxTokens: 12, sampling: { temperature: 1, seed: 3 } })));
    const total = [0, 1, 2, 3].reduce((n, i) => n + tokensOf(events, i).length, 0);
    expect(usageOf(events)?.completionTokens).toBe(total);
    // Only unfinished choices are forwarded: batches shrink as choices finish.
    const sizes = backend.forwards.map((items) => items.length);
    expect(sizes.slice(1)).toEqual([...sizes.slice(1)].sort((x, y) => y - x));
    for (let i = 0; i < 4; i++) {
      const reason = finishOf(events, i);
      expect(reason === 'stop' || tokensOf(events, i).length === 12).toBe(true);
    }
  });

  it('same seed gives the same text; different seeds differ; no seed is random', async () => {
    const run = async (seed: number | undefined) =>
      textOf(
        await collect(() =>
          makeEngine({ backend: { logits: numbersOnly } }).engine.generate(request({ maxTokens: 10, sampling: { temperature: 1, seed } })),
        ),
      );
    const a = await run(1234);
    expect(a.split(' ').filter(Boolean)).toHaveLength(10);
    expect(await run(1234)).toBe(a);
    expect(await run(1235)).not.toBe(a);
    expect(await run(undefined)).not.toBe(await run(undefined));
  });

  it('sampling at temperature 1 over a flat distribution is not greedy', async () => {
    const { engine } = makeEngine({ backend: { logits: flatLogits } });
    const events = await collect(() => engine.generate(request({ maxTokens: 1, ignoreEos: true, sampling: { temperature: 1, seed: 5 }, n: 8 })));
    const firsts = new Set([0, 1, 2, 3, 4, 5, 6, 7].map((i) => tokensOf(events, i)[0]));
    expect(firsts.size).toBeGreaterThan(1);
  });
});

describe('sampling defaults precedence', () => {
  // Greedy over a flat distribution always picks the lowest id ("one"); sampling picks others.
  const gen = async (opts: Parameters<typeof makeEngine>[0], req: Partial<ReturnType<typeof request>>) =>
    textOf(await collect(() => makeEngine({ backend: { logits: numbersOnly }, ...opts }).engine.generate(request({ maxTokens: 8, ...req }))));
  const GREEDY = ' one one one one one one one one';

  it('base temperature is 1 when nothing says otherwise', async () => {
    expect(await gen({}, { sampling: { seed: 1 } })).not.toBe(GREEDY);
  });

  it('endpoint defaults apply when neither the request nor the model says', async () => {
    expect(await gen({}, { sampling: { seed: 1 }, defaults: { temperature: 0 } })).toBe(GREEDY);
  });

  it("the model's generation_config beats the endpoint defaults", async () => {
    const engine = { generationDefaults: { temperature: 0 } };
    expect(await gen({ engine }, { sampling: { seed: 1 }, defaults: { temperature: 0.8 } })).toBe(GREEDY);
    const sampled = { generationDefaults: { temperature: 1 } };
    expect(await gen({ engine: sampled }, { sampling: { seed: 1 }, defaults: { temperature: 0 } })).not.toBe(GREEDY);
  });

  it('an explicit request value beats both, including explicit zeros; undefined does not', async () => {
    const engine = { generationDefaults: { temperature: 0 } };
    expect(await gen({ engine }, { sampling: { temperature: 1, seed: 1 }, defaults: { temperature: 0 } })).not.toBe(GREEDY);
    expect(await gen({ engine: { generationDefaults: { temperature: 1 } } }, { sampling: { temperature: 0 } })).toBe(GREEDY);
    expect(await gen({ engine }, { sampling: { temperature: undefined, seed: 1 } })).toBe(GREEDY);
    // top_k 1 from the model makes sampling greedy; the request's top_k 0 (off) wins.
    const topK = { generationDefaults: { topK: 1 } };
    expect(await gen({ engine: topK }, { sampling: { temperature: 1, seed: 1 } })).toBe(GREEDY);
    expect(await gen({ engine: topK }, { sampling: { temperature: 1, topK: 0, seed: 1 } })).not.toBe(GREEDY);
    // An undefined model default does not mask the endpoint's.
    expect(await gen({ engine: { generationDefaults: { temperature: undefined } } }, { sampling: { seed: 1 }, defaults: { temperature: 0 } })).toBe(GREEDY);
  });
});

describe('penalties reach the logits', () => {
  // Always red 5 > green 4.5 > blue 4; EOS impossible.
  const logits: LogitsFn = (_h, v) => logitsFrom(v, { [w('red')]: 5, [w('green')]: 4.5, [w('blue')]: 4 }, -Infinity);
  const gen = async (sampling: object, prompt = 'hello') =>
    textOf(
      await collect(() =>
        makeEngine({ backend: { logits } }).engine.generate(request({ prompt, maxTokens: 4, sampling: { temperature: 0, ...sampling } })),
      ),
    );

  it('greedy baseline', async () => {
    expect(await gen({})).toBe(' red red red red');
  });

  it('repetition_penalty applies to prompt and generated tokens', async () => {
    // red in the prompt: 5/2 = 2.5 loses to green 4.5 at once.
    expect((await gen({ repetitionPenalty: 2 }, 'hello red')).split(' ')[1]).toBe('green');
    // red 2.5, then green 2.25, then blue 2 ... all seen: red 2.5 again.
    expect(await gen({ repetitionPenalty: 2 })).toBe(' red green blue red');
  });

  it('presence and frequency penalties count generated tokens', async () => {
    expect(await gen({ presencePenalty: 1.2 })).toBe(' red green blue red');
    // frequency 0.6: red 4.4 < green 4.5; then red 4.4 > blue 4 > green 3.9; then blue 4 > green 3.9 > red 3.8.
    expect(await gen({ frequencyPenalty: 0.6 })).toBe(' red green red blue');
  });

  it('logit_bias', async () => {
    expect(await gen({ logitBias: { [w('green')]: 1 } })).toBe(' green green green green');
    expect(await gen({ logitBias: { [w('red')]: -100, [w('green')]: -100 } })).toBe(' blue blue blue blue');
  });
});

describe('beam search', () => {
  // From the prompt: red p=.5, green p=.4. After red: five words at p=.2 each. After green: blue p~1, then EOS.
  // Greedy takes red then one (joint .1); the best sequence is green blue (joint ~.4).
  const L = Math.log;
  const beamLogits = table({
    [w('hello')]: { [w('red')]: L(0.5), [w('green')]: L(0.4), [w('blue')]: L(0.1) },
    [w('red')]: Object.fromEntries(['one', 'two', 'three', 'four', 'five'].map((x) => [w(x), L(0.2)])),
    [w('green')]: { [w('blue')]: L(0.99) },
    [w('blue')]: { [EOS]: L(0.99) },
  });

  it('finds a higher-probability sequence than greedy', async () => {
    const greedy = await collect(() => makeEngine({ backend: { logits: beamLogits } }).engine.generate(request({ prompt: 'hello', maxTokens: 10 })));
    expect(textOf(greedy)).toBe(' red one');

    const { engine, backend } = makeEngine({ backend: { logits: beamLogits } });
    const events = await collect(() =>
      engine.generate(request({ prompt: 'hello', maxTokens: 10, sampling: { temperature: 0, numBeams: 2 } })),
    );
    expect(types(events)).toEqual(['start', 'delta', 'finish', 'usage']);
    expect(events[1]).toEqual({ type: 'delta', index: 0, text: ' green blue', tokens: [w('green'), w('blue')] });
    expect(finishOf(events)).toBe('stop');
    expect(usageOf(events)).toEqual({ type: 'usage', promptTokens: 2, completionTokens: 2 });
    // The prompt is prefilled once; the second beam is a fork.
    expect(backend.forwardedItems.filter((i) => i.tokens.length > 1)).toEqual([{ seq: 1, tokens: [BOS, w('hello')] }]);
    expect(backend.forks.length).toBeGreaterThan(0);
    await settle();
    expect(backend.live.size).toBe(0);
    const used = new Set([1, ...backend.forks.map((f) => f.dst)]);
    expect(new Set(backend.releases)).toEqual(used);
  });

  it('feeds each beam the tokens of its own path', async () => {
    const { engine, backend } = makeEngine({ backend: { logits: beamLogits } });
    const histories: number[][] = [];
    backend.afterForward = (_call, items) => items.forEach((i) => histories.push(backend.history(i.seq)!));
    await collect(() => engine.generate(request({ prompt: 'hello', maxTokens: 10, sampling: { numBeams: 2 } })));
    const prompt = [BOS, w('hello')];
    expect(histories).toEqual(
      expect.arrayContaining([
        [...prompt, w('green')],
        [...prompt, w('red')],
        [...prompt, w('green'), w('blue')],
        [...prompt, w('red'), w('one')],
      ]),
    );
  });

  it("stops at maxTokens with 'length' and balances forks and releases", async () => {
    const { engine, backend } = makeEngine({ backend: { logits: numbersOnly } });
    const liveAtForward: number[] = [];
    backend.afterForward = () => liveAtForward.push(backend.live.size);
    const events = await collect(() => engine.generate(request({ maxTokens: 5, sampling: { numBeams: 3 } })));
    // One sequence per beam while decoding: the prompt, then 3 beams.
    expect(liveAtForward).toEqual([1, 3, 3, 3, 3]);
    expect(finishOf(events)).toBe('length');
    expect(tokensOf(events)).toHaveLength(5);
    expect(usageOf(events)?.completionTokens).toBe(5);
    await settle();
    expect(backend.live.size).toBe(0);
    expect(new Set(backend.releases)).toEqual(new Set([1, ...backend.forks.map((f) => f.dst)]));
  });

  it('rejects n > 1 with beams', async () => {
    const { engine, backend } = makeEngine();
    const { events, error } = await attempt(() => engine.generate(request({ n: 2, sampling: { numBeams: 2 } })));
    expect(events).toEqual([]);
    expect(error).toMatchObject({ status: 400, param: 'n' });
    expect(backend.forwards).toEqual([]);
  });
});

describe('failures', () => {
  it('a failing forward fails every job of that step, leaks nothing, and the engine keeps serving', async () => {
    const errors: unknown[] = [];
    const { engine, backend } = makeEngine({ engine: { onError: (e) => errors.push(e) } });
    const boom = new Error('device lost');
    backend.failWhen = (call) => (call === 3 ? boom : undefined);
    const [a, b] = await Promise.all([
      attempt(() => engine.generate(request({ prompt: 'one', maxTokens: 10 }))),
      attempt(() => engine.generate(request({ prompt: 'five', n: 2, maxTokens: 10 }))),
    ]);
    expect(a.error).toBe(boom);
    expect(b.error).toBe(boom);
    expect(a.events[0].type).toBe('start');
    expect(types(a.events)).not.toContain('usage');
    expect(errors).toEqual([boom]);
    await settle();
    expect(backend.live.size).toBe(0);

    backend.failWhen = undefined;
    const next = await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 2 })));
    expect(textOf(next)).toBe(' two three');
    await settle();
    expect(backend.live.size).toBe(0);
  });

  it('a failing step fails only the jobs in it, not those still queued', async () => {
    const { engine, backend } = makeEngine({ engine: { maxConcurrent: 1 } });
    backend.failWhen = (call) => (call === 1 ? new Error('later') : undefined);
    const [a, b] = await Promise.all([
      attempt(() => engine.generate(request({ prompt: 'one', maxTokens: 10 }))),
      attempt(() => engine.generate(request({ prompt: 'five', maxTokens: 2 }))),
    ]);
    expect((a.error as Error).message).toBe('later');
    expect(textOf(a.events)).toBe(' two');
    expect(b.error).toBeUndefined();
    expect(textOf(b.events)).toBe(' six seven');
    await settle();
    expect(backend.live.size).toBe(0);
  });
});

describe('cancellation and memory', () => {
  it('breaking out of for-await stops the job within one step and releases its sequences', async () => {
    const { engine, backend } = makeEngine();
    let forwardsAtBreak = -1;
    let deltas = 0;
    for await (const event of engine.generate(request({ prompt: 'one', n: 2 }))) {
      if (event.type === 'delta' && ++deltas === 4) {
        forwardsAtBreak = backend.forwards.length;
        break;
      }
    }
    await settle(20);
    expect(backend.forwards.length - forwardsAtBreak).toBeLessThanOrEqual(1);
    expect(backend.live.size).toBe(0);
    expect(new Set(backend.releases)).toEqual(new Set([1, 2]));
  });

  it('aborting the signal stops the job within one step and ends the stream', async () => {
    // 20 ms steps: the beam search cannot finish on its own before the abort, even on a loaded machine.
    const { engine, backend } = makeEngine({ backend: { delayMs: 20 } });
    const controller = new AbortController();
    const events: GenerationEvent[] = [];
    let forwardsAtAbort = -1;
    for await (const event of engine.generate(request({ prompt: 'one', signal: controller.signal, sampling: { numBeams: 2 } }))) {
      events.push(event);
      if (event.type === 'start') {
        await new Promise((r) => setTimeout(r, 5));
        forwardsAtAbort = backend.forwards.length;
        controller.abort();
      }
    }
    expect(forwardsAtAbort).toBeGreaterThan(0);
    expect(types(events)).toEqual(['start']);
    await settle(20);
    expect(backend.forwards.length - forwardsAtAbort).toBeLessThanOrEqual(1);
    expect(backend.live.size).toBe(0);
  });

  it('an aborted request waiting in the queue never reaches the backend', async () => {
    const { engine, backend } = makeEngine({ backend: { delayMs: 1 }, engine: { maxConcurrent: 1 } });
    const controller = new AbortController();
    const first = attempt(() => engine.generate(request({ prompt: 'one', maxTokens: 5 })));
    const second = attempt(() => engine.generate(request({ prompt: 'two', maxTokens: 5, signal: controller.signal })));
    controller.abort();
    const [a, b] = await Promise.all([first, second]);
    expect(textOf(a.events)).toBe(' two three four five six');
    expect(b.error).toBeUndefined();
    expect(types(b.events)).not.toContain('delta');
    expect(backend.forwardedItems.every((i) => i.seq === 1)).toBe(true);
    await settle();
    expect(backend.live.size).toBe(0);
  });

  it('after 200 mixed requests no sequence is left in the backend', async () => {
    // The queue counts sequences (n 3 and 2 beams count 3 and 2): room for all 200 requests.
    const { engine, backend } = makeEngine({ backend: { contextLength: 32 }, engine: { maxConcurrent: 4, maxQueue: 512 } });
    // Prefills of prompts starting with "hello" fail (taking their whole step with them).
    backend.failWhen = (_call, items) =>
      items.some((i) => i.tokens.length > 1 && i.tokens[1] === w('hello')) ? new Error('injected') : undefined;
    const outcomes = { completed: 0, cancelled: 0, failed: 0 };
    const runs = Array.from({ length: 200 }, async (_, i) => {
      const kind = i % 6;
      const controller = new AbortController();
      const req = request({
        prompt: kind === 2 && i % 24 === 2 ? 'hello one' : NUMBER_WORDS[i % 10],
        maxTokens: 3 + (i % 7),
        n: kind === 3 ? 3 : 1,
        sampling: kind === 4 ? { numBeams: 2 } : kind === 3 ? { temperature: 1, seed: i } : { temperature: 0 },
        signal: controller.signal,
      });
      try {
        let deltas = 0;
        for await (const event of engine.generate(req)) {
          if (event.type === 'usage') outcomes.completed++;
          if (kind === 1 && event.type === 'delta' && ++deltas === 2) {
            outcomes.cancelled++;
            break;
          }
          if (kind === 5 && event.type === 'start') controller.abort();
        }
      } catch (error) {
        expect((error as Error).message).toBe('injected');
        outcomes.failed++;
      }
    });
    await Promise.all(runs);
    await settle(20);
    expect(backend.live.size).toBe(0);
    expect(outcomes.completed).toBeGreaterThan(50);
    expect(outcomes.cancelled).toBeGreaterThan(0);
    expect(outcomes.failed).toBeGreaterThanOrEqual(9); // every "hello" request, and whatever shared its step
    expect(backend.peakLive).toBeGreaterThan(1);

    // Still serving, and still correct.
    backend.failWhen = undefined;
    expect(textOf(await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 3 }))))).toBe(' two three four');
    await settle();
    expect(backend.live.size).toBe(0);
  });
});

describe('embeddings', () => {
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

  it('uses mean-pooled hidden states, normalised, when no embedding model is served', async () => {
    const { engine, backend } = makeEngine();
    const result = await engine.embed({ input: ['one two', 'three'] });
    expect(result.model).toBe(MODEL);
    expect(result.promptTokens).toBe(5);
    expect(backend.hiddenInputs).toEqual([[[BOS, w('one'), w('two')], [BOS, w('three')]]]);
    expect(result.embeddings).toHaveLength(2);
    result.embeddings.forEach((v, i) => {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(8);
      expect(norm(v)).toBeCloseTo(1, 5);
      const raw = meanEmbedding(backend.hiddenInputs[0][i], 8);
      const n = norm(raw);
      expect(n).not.toBeCloseTo(1, 1);
      Array.from(v).forEach((x, k) => expect(x).toBeCloseTo(raw[k] / n, 5));
    });
  });

  it('passes token-id inputs through unchanged', async () => {
    const { engine, backend } = makeEngine();
    const result = await engine.embed({ model: MODEL, input: [[w('five'), w('six')]] });
    expect(backend.hiddenInputs).toEqual([[[w('five'), w('six')]]]);
    expect(result.promptTokens).toBe(2);
  });

  it('uses the embedding backend when configured, and hidden states for the generation model name', async () => {
    const embedder = new FakeEmbeddingBackend(4);
    const embTokenizer = new FakeTokenizer();
    const { engine, backend } = makeEngine({
      engine: { embedding: { backend: embedder, tokenizer: embTokenizer, name: 'embedder', contextLength: 8 } },
    });
    const r = await engine.embed({ input: ['one two three'] });
    expect(r.model).toBe('embedder');
    expect(embedder.calls).toEqual([[[BOS, ...ids('one two three')]]]);
    expect(embTokenizer.encoded).toHaveLength(1);
    expect(r.embeddings[0]).toHaveLength(4);
    expect(backend.hiddenInputs).toEqual([]);
    expect((await engine.embed({ model: 'embedder', input: [[5, 6]] })).model).toBe('embedder');

    const g = await engine.embed({ model: MODEL, input: ['one'] });
    expect(g.model).toBe(MODEL);
    expect(g.embeddings[0]).toHaveLength(8);
    expect(backend.hiddenInputs).toHaveLength(1);
    expect(engine.models().map((m) => [m.id, m.kind, m.embeddingSize, m.contextLength])).toEqual([
      [MODEL, 'generation', 8, 64], ['embedder', 'embedding', 4, 8],
    ]);
    await expect(engine.embed({ model: 'other', input: ['one'] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('rejects empty and over-long inputs with 400', async () => {
    const embedder = new FakeEmbeddingBackend(4);
    const { engine, backend } = makeEngine({
      backend: { contextLength: 16 },
      engine: { embedding: { backend: embedder, tokenizer: new FakeTokenizer(), name: 'embedder', contextLength: 8 } },
    });
    await expect(engine.embed({ input: ['one', []] })).rejects.toMatchObject({ status: 400, param: 'input' });
    await expect(engine.embed({ input: ['one two three four five six seven eight'] })).rejects.toMatchObject({
      status: 400, code: 'context_length_exceeded',
    });
    await expect(engine.embed({ input: ['one two three four five six seven'] })).resolves.toBeDefined();
    const long = Array.from({ length: 17 }, () => w('one'));
    await expect(engine.embed({ model: MODEL, input: [long] })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
    await expect(engine.embed({ model: MODEL, input: [long.slice(1)] })).resolves.toBeDefined();
    expect(embedder.calls).toHaveLength(1);
    expect(backend.hiddenInputs).toHaveLength(1);
  });

  it('rejects token ids outside the vocabulary of the generation model with 400', async () => {
    const { engine, backend } = makeEngine();
    await expect(engine.embed({ input: [[w('one'), VOCAB_SIZE]] })).rejects.toMatchObject({ status: 400, param: 'input' });
    expect(backend.hiddenInputs).toEqual([]);
  });
});

describe('edge cases of starting', () => {
  it('a request whose client is already gone starts, ends without output, and frees its sequence', async () => {
    const { engine, backend } = makeEngine();
    const controller = new AbortController();
    controller.abort();
    const { events, error } = await attempt(() => engine.generate(request({ prompt: 'one', signal: controller.signal })));
    expect(error).toBeUndefined();
    expect(types(events)).toEqual(['start']);
    await settle();
    expect(backend.live.size).toBe(0);
  });

  it('reports an unknown model on the first read, not by throwing from generate()', async () => {
    const { engine } = makeEngine();
    const stream = engine.generate(request({ model: 'nope' }));
    await expect(stream[Symbol.asyncIterator]().next()).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('rejects an empty string as embedding input', async () => {
    const { engine } = makeEngine();
    await expect(engine.embed({ input: ['fine', ''] })).rejects.toMatchObject({ status: 400, param: 'input', message: 'input[1] is empty.' });
  });
});

describe('greedyNext hints (the backend may start the next step early)', () => {
  const hintsOf = async (r: Parameters<typeof request>[0]) => {
    const { engine, backend } = makeEngine();
    await collect(() => engine.generate(request({ prompt: 'one', ...r })));
    return backend.hints;
  };

  it('promises the argmax on every greedy decode step but the last', async () => {
    const { engine, backend } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 4 })));
    expect(backend.hints).toEqual([[false], [true], [true], [false]]);
    // The promise held: each hinted step was followed by the token the model ranked first.
    expect(backend.forwards.slice(2).map((items) => items[0].tokens)).toEqual([[w('three')], [w('four')]]);
    expect(tokensOf(events)).toEqual(ids('two three four five'));
  });

  it('makes no promise when the next token may differ from the argmax', async () => {
    const none = [[false], [false], [false], [false]];
    expect(await hintsOf({ maxTokens: 4, sampling: { temperature: 0.8, seed: 1 } })).toEqual(none);
    expect(await hintsOf({ maxTokens: 4, sampling: { temperature: 0, repetitionPenalty: 1.1 } })).toEqual(none);
    expect(await hintsOf({ maxTokens: 4, sampling: { temperature: 0, presencePenalty: 0.5 } })).toEqual(none);
    expect(await hintsOf({ maxTokens: 4, sampling: { temperature: 0, frequencyPenalty: 0.5 } })).toEqual(none);
    expect(await hintsOf({ maxTokens: 4, sampling: { temperature: 0, logitBias: { [w('four')]: 5 } } })).toEqual(none);
    expect((await hintsOf({ maxTokens: 4, sampling: { numBeams: 2 } })).flat()).not.toContain(true);
  });

  it('waits for min_tokens (EOS is suppressed until then) and covers every choice of n', async () => {
    expect(await hintsOf({ maxTokens: 5, minTokens: 3 })).toEqual([[false], [false], [false], [true], [false]]);
    expect(await hintsOf({ maxTokens: 3, n: 2 })).toEqual([[false], [true, true], [false, false]]);
  });
});

describe('KV reuse (prefix cache and sessions)', () => {
  const cached = () => makeEngine({ backend: { kvBytesPerToken: 8 }, engine: { cacheMaxBytes: 8 * 1000 } });

  it('a repeated prompt forwards only its last token, from a fork of the cached sequence, with the same text', async () => {
    const plain = makeEngine();
    const expected = textOf(await collect(() => plain.engine.generate(request({ prompt: 'one two three', maxTokens: 4 }))));
    const { engine, backend } = cached();
    const first = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    const callsBefore = backend.forwards.length;
    const second = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    expect(textOf(first)).toBe(expected);
    expect(textOf(second)).toBe(expected);
    const prefill = backend.forwards[callsBefore][0];
    expect(backend.forks).toHaveLength(1);
    expect(prefill.tokens).toEqual([w('three')]);
    expect(prefill.source).toEqual({ seq: prefill.seq, length: 3 }); // BOS one two
    expect(usageOf(second)).toMatchObject({ promptTokens: 4, completionTokens: 4 });
  });

  it('recomputes the last two tokens of a cached prompt when the model quantizes activations', async () => {
    const { engine, backend } = makeEngine({ backend: { kvBytesPerToken: 8, quantizedActivations: true }, engine: { cacheMaxBytes: 8 * 1000 } });
    const first = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    const callsBefore = backend.forwards.length;
    const second = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    expect(textOf(second)).toBe(textOf(first));
    const prefill = backend.forwards[callsBefore][0];
    expect(prefill.tokens).toEqual([w('two'), w('three')]);
    expect(prefill.source).toEqual({ seq: prefill.seq, length: 2 }); // BOS one
  });

  it("reuses no other request's prefix when the backend's logits depend on how calls group tokens", async () => {
    const { engine, backend } = makeEngine({ backend: { kvBytesPerToken: 8, batchInvariant: false }, engine: { cacheMaxBytes: 8 * 1000 } });
    const first = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    const callsBefore = backend.forwards.length;
    const second = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    expect(textOf(second)).toBe(textOf(first));
    expect(backend.forks).toHaveLength(0);
    expect(backend.forwards[callsBefore][0].tokens).toHaveLength(4); // BOS one two three, prefilled again
    expect(backend.forwards[callsBefore][0].source).toBeUndefined();
  });

  it("reuses another request's prefix on such a backend when its steps were shown row-invariant", async () => {
    const { engine, backend } = makeEngine({ backend: { kvBytesPerToken: 8, batchInvariant: false, rowInvariant: true }, engine: { cacheMaxBytes: 8 * 1000 } });
    const first = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    const second = await collect(() => engine.generate(request({ prompt: 'one two three', maxTokens: 4 })));
    expect(textOf(second)).toBe(textOf(first));
    expect(backend.forks).toHaveLength(1);
  });

  it('turn 2 of a session forwards only the new tokens, on the same sequence', async () => {
    const { engine, backend, tokenizer } = cached();
    tokenizer.applyChatTemplate = (messages) => messages.map((m) => m.content).join(' ');
    const turn = (prompt: string, start: boolean) =>
      collect(() => engine.generate(request({ prompt, maxTokens: 2, session: { id: 's', start, end: false } })));
    await turn('one', true); // renders "one", replies "two three"
    const callsBefore = backend.forwards.length;
    await turn('four', false); // renders "one two three four"
    const prefill = backend.forwards[callsBefore][0];
    expect(backend.forks).toHaveLength(0);
    // Cached: BOS one two (the reply's last token was sampled, never forwarded); new: three four.
    expect(prefill.tokens).toEqual([w('three'), w('four')]);
    expect(prefill.source).toBeUndefined();
  });

  it('sequence_start forgets the cached conversation, sequence_end frees it', async () => {
    const { engine, backend, tokenizer } = cached();
    tokenizer.applyChatTemplate = (messages) => messages.map((m) => m.content).join(' ');
    const run = (start: boolean, end: boolean) =>
      collect(() => engine.generate(request({ prompt: 'one', maxTokens: 2, session: { id: 's', start, end } })));
    await run(true, false);
    expect(backend.live.size).toBe(1);
    await run(true, false);
    expect(backend.live.size).toBe(1); // the old conversation's cache was released
    await run(false, true);
    await settle();
    expect(backend.live.size).toBe(0);
  });

  it('stays within the byte budget however many requests pass', async () => {
    const { engine, backend } = makeEngine({ backend: { kvBytesPerToken: 8 }, engine: { cacheMaxBytes: 8 * 20 } });
    for (const word of NUMBER_WORDS.slice(0, 12)) await collect(() => engine.generate(request({ prompt: `${word} ${word}`, maxTokens: 3 })));
    await settle();
    const held = [...backend.live].reduce((sum, seq) => sum + backend.history(seq)!.length, 0);
    expect(held).toBeLessThanOrEqual(20);
    expect(backend.live.size).toBeGreaterThan(0);
  });

  it('a cancelled request does not enter the cache', async () => {
    const { engine, backend } = cached();
    for await (const event of engine.generate(request({ prompt: 'one', maxTokens: 10 }))) if (event.type === 'delta') break;
    await settle();
    expect(backend.live.size).toBe(0);
  });
});

describe('logprobs', () => {
  it('reports the chosen token and its top alternatives from the raw distribution', async () => {
    const { engine } = makeEngine();
    const events = await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 3, logprobs: 2 })));
    const entries = events.flatMap((e) => (e.type === 'delta' ? (e.logprobs ?? []) : []));
    expect(entries.map((e) => e.token)).toEqual(tokensOf(events));
    for (const entry of entries) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top).toHaveLength(2);
      // Greedy picks the most likely token, so it heads the alternatives.
      expect(entry.top[0]).toMatchObject({ token: entry.token, logprob: entry.logprob });
      expect(entry.top[1].logprob).toBeLessThanOrEqual(entry.top[0].logprob);
    }
    // Each token's text is what it added to the reply (its leading space too); see logprob-text.test.ts.
    expect(entries.map((e) => e.text)).toEqual([' two', ' three', ' four']);
  });

  it('leaves logprobs out unless asked, and refuses them with beam search or out of range', async () => {
    const { engine } = makeEngine();
    const plain = await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 2 })));
    expect(plain.some((e) => e.type === 'delta' && e.logprobs !== undefined)).toBe(false);
    await expect(collect(() => engine.generate(request({ logprobs: 1, sampling: { numBeams: 2 } })))).rejects.toMatchObject({ status: 400, param: 'logprobs' });
    await expect(collect(() => engine.generate(request({ logprobs: 21 })))).rejects.toMatchObject({ status: 400, param: 'logprobs' });
  });
});

describe('chunked prefill', () => {
  it('forwards a long prompt in chunks between the decode steps of others, with the same text', async () => {
    const prompt = 'one two three four five six seven'; // 8 tokens with BOS
    const plain = makeEngine();
    const expected = textOf(await collect(() => plain.engine.generate(request({ prompt, maxTokens: 3 }))));
    const { engine, backend } = makeEngine({ engine: { prefillChunk: 3 } });
    const running = collect(() => engine.generate(request({ prompt: 'ten', maxTokens: 8 })));
    await Promise.resolve();
    const long = await collect(() => engine.generate(request({ prompt, maxTokens: 3 })));
    await running;
    expect(textOf(long)).toBe(expected);
    const longSeq = backend.forwardedItems.find((i) => i.tokens.length === 3 && i.tokens[0] === BOS)!.seq;
    const chunks = backend.forwards.map((items) => items.find((i) => i.seq === longSeq)?.tokens.length).filter(Boolean);
    expect(chunks.slice(0, 3)).toEqual([3, 3, 2]);
    // The other request kept decoding in the steps that carried the chunks.
    const withChunks = backend.forwards.filter((items) => items.some((i) => i.seq === longSeq && i.tokens.length > 1));
    expect(withChunks.every((items) => items.length === 2)).toBe(true);
  });
});
