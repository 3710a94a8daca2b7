/**
 * Prompt-lookup speculative decoding in the engine, on the fake backend: every request must give
 * exactly the events it gives without speculation, whatever happens to its drafts.
 */
import { describe, expect, it } from 'vitest';
import {
  collect, EOS, finishOf, ids, logitsFrom, makeEngine, request, settle, textOf, type FakeEngineSetup, type LogitsFn,
} from '../../test/fixtures/fake-backend.js';
import type { ForwardItem } from './backend.js';
import type { GenerateRequest, GenerationEvent } from './types.js';

/**
 * A model whose greedy continuation of `prompt` is `script` (ids): while the generated tokens
 * follow the script, the next scripted token gets logit 10; off the script (a rejected draft's
 * positions) the logits are junk that peaks at "hello". After the script, EOS.
 */
function scripted(prompt: number[], script: number[]): LogitsFn {
  return (history, vocab) => {
    const generated = history.slice(prompt.length);
    const onScript = generated.every((t, i) => t === script[i]);
    const next = onScript ? (script[generated.length] ?? EOS) : ids('hello')[0];
    return logitsFrom(vocab, { [next]: 10 });
  };
}

const BOS = 1;
/** Word ids, with "EOS" for the end of sequence. */
const words = (text: string) => text.split(' ').map((word) => (word === 'EOS' ? EOS : ids(word)[0]));
/** A plain and a speculating engine on the same model, run on the same request; returns both. */
async function both(prompt: string, script: string, req: Partial<GenerateRequest> = {}, setup: FakeEngineSetup = {}, maxDraft = 3) {
  const promptIds = [BOS, ...ids(prompt)];
  const logits = scripted(promptIds, words(script));
  const plain = makeEngine({ ...setup, backend: { ...setup.backend, logits } });
  const spec = makeEngine({ ...setup, backend: { ...setup.backend, logits }, engine: { ...setup.engine, promptLookup: maxDraft } });
  const r = request({ prompt, maxTokens: 32, ...req });
  const plainEvents = await collect(() => plain.engine.generate(r));
  const specEvents = await collect(() => spec.engine.generate(r));
  return { plain, spec, plainEvents, specEvents };
}

const drafted = (items: ForwardItem[][]) => items.flat().filter((item) => item.allLogits);

describe('prompt lookup', () => {
  it('accepts drafts the model agrees with: the same events in fewer steps', async () => {
    const { plain, spec, plainEvents, specEvents } = await both('red green blue red green blue', 'red green blue red green blue red', { maxTokens: 7 });
    expect(specEvents).toEqual(plainEvents);
    expect(textOf(specEvents)).toBe(' red green blue red green blue red');
    expect(finishOf(specEvents)).toBe('length');
    expect(spec.backend.forwards.length).toBeLessThan(plain.backend.forwards.length);
    // after the prefill's "red": [red, green blue red] verified, all three accepted (+1 own token)
    expect(spec.backend.forwards[1]).toEqual([{ seq: 1, tokens: ids('red green blue red'), allLogits: true }]);
    const metrics = spec.engine.metrics!()!.specDecode!;
    expect(metrics.acceptedTokens).toBe(metrics.draftTokens);
    expect(metrics.drafts).toBeGreaterThan(0);
    expect(plain.engine.metrics!()!.specDecode).toBeUndefined();
  });

  it('rejects a draft at its first disagreement, takes the model token there, and drops the rest of the cache', async () => {
    // the prompt suggests "green blue red" after "red green"... but the model continues otherwise
    const { spec, plainEvents, specEvents } = await both('red green blue red', 'green blue world red green hello world one', { maxTokens: 9 });
    expect(specEvents).toEqual(plainEvents);
    const items = spec.backend.forwardedItems;
    // "red green" drafts "blue red green": "blue" is accepted, "world" replaces "red"
    expect(items[1]).toEqual({ seq: 1, tokens: ids('green blue red green'), allLogits: true });
    // the next step drops the rejected "red green" (2 prompt+... positions) before appending
    const promptLength = 5;
    expect(items[2].source).toEqual({ seq: 1, length: promptLength + 2 });
    expect(items[2].tokens[0]).toBe(ids('world')[0]);
    // the cache at every step held exactly the accepted tokens
    const m = spec.engine.metrics!()!.specDecode!;
    expect(m.acceptedTokens).toBeLessThan(m.draftTokens);
    expect(m.acceptedTokens).toBeGreaterThan(0);
  });

  it('a draft rejected at its first token still gives the model token', async () => {
    const { spec, plainEvents, specEvents } = await both('red green blue red', 'green hello world', { maxTokens: 3 });
    expect(specEvents).toEqual(plainEvents);
    expect(textOf(specEvents)).toBe(' green hello world');
    expect(spec.engine.metrics!()!.specDecode).toMatchObject({ acceptedTokens: 0 });
    expect(drafted(spec.backend.forwards).length).toBeGreaterThan(0);
  });

  it('ends at a stop string inside an accepted draft, with the same text', async () => {
    const { spec, plainEvents, specEvents } = await both('red green blue red green blue', 'red green blue red green blue', { stop: ['blue red'] });
    expect(specEvents).toEqual(plainEvents);
    expect(textOf(specEvents)).toBe(' red green ');
    expect(finishOf(specEvents)).toBe('stop');
    expect(drafted(spec.backend.forwards).length).toBeGreaterThan(0);
  });

  it('never drafts past max_tokens, and ends at it inside a draft', async () => {
    for (const maxTokens of [2, 3, 4, 5]) {
      const { spec, plainEvents, specEvents } = await both('red green blue red green blue', 'red green blue red green blue', { maxTokens }, {}, 8);
      expect(specEvents).toEqual(plainEvents);
      expect(finishOf(specEvents)).toBe('length');
      // the first token comes from the prefill; a step gives at most its draft + 1 tokens
      for (const item of drafted(spec.backend.forwards)) expect(item.tokens.length - 1).toBeLessThanOrEqual(maxTokens - 2);
    }
  });

  it('ends at EOS inside a draft, neither counted nor in the text', async () => {
    // the prompt holds "green </s>": after "red green" the draft is "</s> one red", and the model agrees on EOS
    const { spec, plainEvents, specEvents } = await both('one red green </s> two red', 'green EOS', {});
    expect(specEvents).toEqual(plainEvents);
    expect(textOf(specEvents)).toBe(' green');
    expect(finishOf(specEvents)).toBe('stop');
    expect(drafted(spec.backend.forwards)[0].tokens).toEqual([...ids('green'), EOS, ...ids('two red')]);
  });

  it('leaves a kept prefix that describes its cache exactly, rejected draft positions included', async () => {
    // "red green" drafts "blue red green"; the model takes "blue", then ends (EOS) where the draft said "red":
    // the cache holds the prompt, "green blue" and the unverified "red green"
    const setup = { backend: { kvBytesPerToken: 1 } };
    const { spec, plainEvents, specEvents } = await both('red green blue red', 'green blue EOS', {}, setup);
    expect(specEvents).toEqual(plainEvents);
    expect(spec.backend.forwardedItems[1]).toEqual({ seq: 1, tokens: ids('green blue red green'), allLogits: true });
    await settle();
    // a prompt that extends all of it reuses the kept sequence, and its cache must be exactly that prompt
    const prompt = 'red green blue red green blue red green one two';
    const next = await collect(() => spec.engine.generate(request({ prompt, maxTokens: 1 })));
    expect(next[0]).toMatchObject({ type: 'start', cachedTokens: 9 });
    expect(spec.backend.prefilledContexts.at(-1)).toEqual([BOS, ...ids(prompt)]);
  });

  it('stops speculating beside other running jobs, for sampled, n > 1, logprobs and penalised requests, and on a batch-variant backend', async () => {
    const logits = scripted([BOS, ...ids('red green blue red green blue')], ids('red green blue red green blue red green blue'));
    const cases: Array<Partial<GenerateRequest>> = [
      { sampling: { temperature: 0.7, seed: 1 } },
      { n: 2 },
      { logprobs: 2 },
      { sampling: { temperature: 0, repetitionPenalty: 1.1 } },
    ];
    for (const extra of cases) {
      const { engine, backend } = makeEngine({ backend: { logits }, engine: { promptLookup: 4 } });
      await collect(() => engine.generate(request({ prompt: 'red green blue red green blue', maxTokens: 6, ...extra })));
      expect(drafted(backend.forwards)).toEqual([]);
    }
    // a backend whose logits depend on what shares the call: never
    const mixed = makeEngine({ backend: { logits, batchInvariant: false }, engine: { promptLookup: 4 } });
    await collect(() => mixed.engine.generate(request({ prompt: 'red green blue red green blue', maxTokens: 6 })));
    expect(drafted(mixed.backend.forwards)).toEqual([]);
    expect(mixed.engine.metrics!()!.specDecode).toBeUndefined();
    // ... unless its steps were shown row-invariant (rows run alone, e.g. --exact-quantized)
    const alone = makeEngine({ backend: { logits, batchInvariant: false, rowInvariant: true }, engine: { promptLookup: 4 } });
    await collect(() => alone.engine.generate(request({ prompt: 'red green blue red green blue', maxTokens: 6 })));
    expect(drafted(alone.backend.forwards).length).toBeGreaterThan(0);
    // two greedy requests at once: no drafts while both run
    const { engine, backend } = makeEngine({ backend: { logits }, engine: { promptLookup: 4 } });
    const r = request({ prompt: 'red green blue red green blue', maxTokens: 6 });
    await Promise.all([collect(() => engine.generate(r)), collect(() => engine.generate(r))]);
    for (const items of backend.forwards) if (items.length > 1) expect(items.some((item) => item.allLogits)).toBe(false);
  });

  it('asks for no early step where the next step may bring a draft', async () => {
    // "one two three four": no token repeats, so no draft is ever possible and every step may start early
    const counting = makeEngine({ engine: { promptLookup: 4 } });
    await collect(() => counting.engine.generate(request({ prompt: 'one two', maxTokens: 4 })));
    expect(drafted(counting.backend.forwards)).toEqual([]);
    expect(counting.backend.hints.slice(1, -1).flat().every(Boolean)).toBe(true);
    // after "world" (new) every next token is safe; after "hello" (seen before) the next one may complete a bigram
    const { spec, plainEvents, specEvents } = await both('red green blue hello red', 'world hello blue green red', { maxTokens: 5 });
    expect(specEvents).toEqual(plainEvents);
    expect(spec.backend.forwardedItems.slice(1, 3).map((item) => item.tokens)).toEqual([ids('world'), ids('hello')]);
    expect(spec.backend.hints.slice(1, 3)).toEqual([[true], [false]]);
  });

  it('drafts less where drafted steps cost more than their drafts bring', async () => {
    // bigrams only: "red green" was last followed by the other of "blue" / "hello", so most drafts fail at once
    const prompt = 'red green blue red green hello';
    const script = 'red green blue red green hello '.repeat(4).trim();
    const run = async (draftMs: number) => {
      let clock = 0;
      const logits = scripted([BOS, ...ids(prompt)], words(script));
      const setup = makeEngine({ backend: { logits }, engine: { promptLookup: { maxDraft: 3, maxNgram: 2 }, now: () => clock } });
      setup.backend.beforeForward = (_call, items) => {
        clock += items.some((item) => item.allLogits) ? draftMs : 10;
      };
      const events = await collect(() => setup.engine.generate(request({ prompt, maxTokens: 24 })));
      return { events, drafts: drafted(setup.backend.forwards).length };
    };
    const plain = await collect(() => makeEngine({ backend: { logits: scripted([BOS, ...ids(prompt)], words(script)) } }).engine.generate(request({ prompt, maxTokens: 24 })));
    const cheap = await run(10);
    const costly = await run(100); // no draft of 3 can pay for 10 plain steps
    expect(cheap.events).toEqual(plain);
    expect(costly.events).toEqual(plain);
    expect(costly.drafts).toBeLessThan(cheap.drafts);
  });

  it('stops at once when cancelled during a drafted step', async () => {
    const logits = scripted([BOS, ...ids('red green blue red green blue')], ids('red green blue red green blue red green blue'));
    const { engine, backend } = makeEngine({ backend: { logits }, engine: { promptLookup: 3 } });
    const abort = new AbortController();
    backend.beforeForward = (_call, items) => {
      if (items.some((item) => item.allLogits)) abort.abort();
    };
    const events: GenerationEvent[] = [];
    try {
      for await (const event of engine.generate(request({ prompt: 'red green blue red green blue', maxTokens: 20, signal: abort.signal }))) events.push(event);
    } catch {
      // a cancelled stream may end with an error
    }
    await settle();
    expect(drafted(backend.forwards).length).toBe(1);
    expect(backend.live.size).toBe(0);
    expect(events.filter((e) => e.type === 'delta').length).toBeLessThanOrEqual(1);
  });
});
