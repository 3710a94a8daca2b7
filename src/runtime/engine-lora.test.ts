/**
 * LoRA adapters served at run time (`--lora-modules`) through the engine on the fake backend:
 * the adapters are model ids beside the base, each request's sequences carry its adapter to the
 * backend, one step can mix adapters, and no KV computed under one adapter is reused under another
 * (prefix cache, sessions, n > 1 forks).
 */
import { describe, expect, it } from 'vitest';
import { collect, countingLogits, ids, makeEngine, MODEL, request, settle, textOf, type LogitsFn } from '../../test/fixtures/fake-backend.js';
import { isInferenceError } from '../errors.js';

/** Adapter k counts in steps of k + 1 ("one" -> "three" under adapter 1): each adapter has its own text. */
const adapterLogits: LogitsFn = (history, vocab, adapter) => {
  let h = history;
  for (let i = 0; i < adapter; i++) {
    const row = countingLogits(h, vocab, 0);
    h = [...h, Array.from(row).indexOf(10)];
  }
  return countingLogits(h, vocab, 0);
};

const loraEngine = (cache = true) =>
  makeEngine({
    backend: { logits: adapterLogits, ...(cache ? { kvBytesPerToken: 8 } : {}) },
    engine: { adapters: ['sql', 'poem'], ...(cache ? { cacheMaxBytes: 8 * 1000 } : {}) },
  });

describe('LoRA adapters as model ids', () => {
  it('lists each adapter beside the base with parent = the base id', () => {
    const { engine } = loraEngine();
    expect(engine.models().map((m) => [m.id, m.parent])).toEqual([[MODEL, undefined], ['sql', MODEL], ['poem', MODEL]]);
  });

  it('each request runs under the adapter its model names; the base id runs the base', async () => {
    const { engine, backend } = loraEngine();
    const text = async (model: string) => textOf(await collect(() => engine.generate(request({ model, prompt: 'one', maxTokens: 3 }))));
    expect(await text(MODEL)).toBe(' two three four');
    expect(await text('sql')).toBe(' three five seven');
    expect(await text('poem')).toBe(' four seven ten');
    // Every item of the adapters' requests said so; the base's items carry none.
    const adapters = new Set(backend.forwardedItems.map((item) => item.adapter));
    expect([...adapters].sort()).toEqual([1, 2, undefined]);
  });

  it('one step mixes the base and both adapters, each with its solo text', async () => {
    const { engine, backend } = loraEngine(false);
    const models = [MODEL, 'sql', 'poem'];
    const solo = [];
    for (const model of models) solo.push(textOf(await collect(() => engine.generate(request({ model, prompt: 'one', maxTokens: 4 })))));
    const calls = backend.forwards.length;
    const together = await Promise.all(models.map((model) => collect(() => engine.generate(request({ model, prompt: 'one', maxTokens: 4 })))));
    expect(together.map((events) => textOf(events))).toEqual(solo);
    const mixed = backend.forwards.slice(calls).find((items) => new Set(items.map((i) => i.adapter ?? 0)).size === 3);
    expect(mixed).toBeDefined();
  });

  it('an unknown model id is a 404 naming every served id', async () => {
    const { engine } = loraEngine();
    const error = await collect(() => engine.generate(request({ model: 'nope' }))).catch((e) => e);
    expect(isInferenceError(error) && error.status).toBe(404);
    expect((error as Error).message).toMatch(/The model `nope` does not exist\. This server serves: fake-model, sql, poem/);
  });

  it('refuses an adapter id that is also a base name', () => {
    expect(() => makeEngine({ engine: { adapters: [MODEL] } })).toThrow(/The model id "fake-model" is given twice/);
  });

  it('the prefix cache never hands KV from one adapter (or the base) to another', async () => {
    const { engine, backend } = loraEngine();
    const run = (model: string) => collect(() => engine.generate(request({ model, prompt: 'one two three', maxTokens: 2 })));
    await run(MODEL);
    const calls = backend.forwards.length;
    const sql = await run('sql');
    expect(sql.find((e) => e.type === 'start')).toMatchObject({ cachedTokens: 0 });
    expect(backend.forks).toHaveLength(0);
    expect(backend.forwards[calls][0].tokens).toHaveLength(4); // BOS one two three, all computed under sql
    expect(textOf(sql)).toBe(' five seven');
    // The same adapter again does reuse its own prefix.
    const again = await run('sql');
    expect(again.find((e) => e.type === 'start')).toMatchObject({ cachedTokens: 3 });
    expect(backend.forks).toHaveLength(1);
    expect(textOf(again)).toBe(' five seven');
    const base = await run(MODEL);
    expect(textOf(base)).toBe(' four five');
    expect(backend.forks).toHaveLength(2); // from the base's own entry
    for (const { src, dst } of backend.forks) expect(backend.adapters.get(dst) ?? 0).toBe(backend.adapters.get(src) ?? 0);
  });

  it('a /generate session turn under another model id recomputes the history under it (never reuses the KV)', async () => {
    const { engine, backend, tokenizer } = loraEngine();
    tokenizer.applyChatTemplate = (messages) => messages.map((m) => m.content).join(' ');
    const turn = (model: string, prompt: string, start: boolean) =>
      collect(() => engine.generate(request({ model, prompt, maxTokens: 2, session: { id: 's', start, end: false } })));
    await turn('sql', 'one', true); // "one" -> "three five"
    const calls = backend.forwards.length;
    const second = await turn(MODEL, 'six', false); // history "one three five six" under the base
    const prefill = backend.forwards[calls][0];
    expect(prefill.adapter).toBeUndefined();
    expect(prefill.tokens).toEqual(ids('one three five six'));
    expect(textOf(second)).toBe(' seven eight');
    await settle();
    expect(backend.live.size).toBe(1); // the session's KV under sql was dropped for the new one
  });

  it('n > 1 forks keep the adapter, and embeddings of an adapter id run under it', async () => {
    const { engine, backend } = loraEngine();
    const events = await collect(() => engine.generate(request({ model: 'poem', prompt: 'one', maxTokens: 2, n: 2 })));
    expect([textOf(events, 0), textOf(events, 1)]).toEqual([' four seven', ' four seven']);
    await engine.embed({ model: 'sql', input: ['one two'] });
    await engine.embed({ model: MODEL, input: ['one two'] });
    const hidden = backend.calls.filter((c) => c.type === 'hiddenStates');
    expect(hidden.map((c) => (c.type === 'hiddenStates' ? c.adapter : -1))).toEqual([1, undefined]);
  });
});
