import { describe, expect, it } from 'vitest';
import {
  attempt, BOS, collect, finishOf, ids, makeEngine, request, settle, textOf, tokensOf, usageOf,
} from '../../test/fixtures/fake-backend.js';
import { SessionStore, turnSuffix } from './sessions.js';
import { renderChat, type ChatTemplate } from './templates.js';
import type { Tokenizer } from './tokenizer.js';
import type { GenerateRequest, GenerationEvent, SessionControl } from './types.js';

const types = (events: GenerationEvent[]) => events.map((e) => e.type);

/** A /generate turn as the handler builds it: text prompt, session control. */
function turn(text: string, session: SessionControl, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return request({ prompt: text, session, maxTokens: 2, ...extra });
}

describe('sessions through the engine', () => {
  it('turn 2 renders the turn-1 prompt and reply; start true resets; end true forgets afterwards', async () => {
    const { engine, backend } = makeEngine();
    const prefill = () => backend.forwardedItems.filter((i) => i.tokens.length > 1).at(-1)!.tokens;

    const t1 = await collect(() => engine.generate(turn('one two', { id: '7', start: true, end: false })));
    expect(prefill()).toEqual([BOS, ...ids('user : one two assistant :')]);
    expect(textOf(t1)).toBe(' one two');

    const t2 = await collect(() => engine.generate(turn('five', { id: '7', start: false, end: false })));
    expect(prefill()).toEqual([BOS, ...ids('user : one two assistant : one two user : five assistant :')]);
    expect(t2[0]).toMatchObject({ type: 'start', promptTokens: 14 });

    // Another session is independent.
    await collect(() => engine.generate(turn('red', { id: '8', start: false, end: false })));
    expect(prefill()).toEqual([BOS, ...ids('user : red assistant :')]);

    const t3 = await collect(() => engine.generate(turn('three', { id: '7', start: false, end: true })));
    expect(prefill()).toEqual([
      BOS, ...ids('user : one two assistant : one two user : five assistant : one two user : three assistant :'),
    ]);
    expect(textOf(t3)).toBe(' one two');

    // Ended: the next turn starts from nothing even with start false.
    await collect(() => engine.generate(turn('four', { id: '7', start: false, end: false })));
    expect(prefill()).toEqual([BOS, ...ids('user : four assistant :')]);
    await collect(() => engine.generate(turn('six', { id: '7', start: false, end: false })));
    expect(prefill()).toEqual([BOS, ...ids('user : four assistant : one two user : six assistant :')]);

    // start true forgets the history.
    await collect(() => engine.generate(turn('seven', { id: '7', start: true, end: false })));
    expect(prefill()).toEqual([BOS, ...ids('user : seven assistant :')]);
  });

  it('turn 2 appends to the context: the history is not tokenized again, only the new turn', async () => {
    const { engine, backend, tokenizer } = makeEngine();
    await collect(() => engine.generate(turn('one two', { id: 'a', start: true, end: false })));
    const generated = tokensOf(await collect(() => engine.generate(turn('five', { id: 'a', start: false, end: false }))));
    // Turn 1's prompt, its reply's tokens as generated, then only what turn 2 adds.
    expect(tokenizer.encoded.at(-1)).toEqual({ text: ' user : five assistant :', addSpecialTokens: false });
    expect(generated).toEqual(ids('one two'));
    await collect(() => engine.generate(turn('six', { id: 'a', start: false, end: false })));
    expect(tokenizer.encoded.at(-1)).toEqual({ text: ' user : six assistant :', addSpecialTokens: false });
    expect(backend.forwardedItems.filter((i) => i.tokens.length > 1).at(-1)!.tokens).toEqual([
      BOS, ...ids('user : one two assistant : one two user : five assistant : one two user : six assistant :'),
    ]);
  });

  it('records the reply text, cut at a stop string; the next turn is rendered in full', async () => {
    const { engine, backend, tokenizer } = makeEngine();
    const t1 = await collect(() => engine.generate(turn('hello', { id: 's', start: true, end: false }, { stop: ['three'], maxTokens: 10 })));
    expect(textOf(t1)).toBe(' one two ');
    await collect(() => engine.generate(turn('red', { id: 's', start: false, end: false })));
    const full = '<s> user : hello assistant :  one two  user : red assistant :';
    expect(tokenizer.encoded.at(-1)).toEqual({ text: full, addSpecialTokens: false });
    expect(backend.forwardedItems.filter((i) => i.tokens.length > 1).at(-1)!.tokens).toEqual([
      BOS, ...ids('user : hello assistant : one two user : red assistant :'),
    ]);
  });

  it('a second concurrent request on a busy session gets 409 session_busy; the first completes', async () => {
    const { engine } = makeEngine({ backend: { delayMs: 1 } });
    const first = attempt(() => engine.generate(turn('one', { id: '1', start: true, end: false }, { maxTokens: 4 })));
    const second = await attempt(() => engine.generate(turn('two', { id: '1', start: false, end: false })));
    expect(second.events).toEqual([]);
    expect(second.error).toMatchObject({ status: 409, code: 'session_busy', param: 'session' });
    const done = await first;
    expect(done.error).toBeUndefined();
    expect(usageOf(done.events)?.completionTokens).toBe(4);
    // Free again afterwards.
    await settle();
    expect((await attempt(() => engine.generate(turn('two', { id: '1', start: false, end: false })))).error).toBeUndefined();
  });

  it('a session whose history fills the context answers at once with an empty length finish', async () => {
    const { engine, backend } = makeEngine({ backend: { contextLength: 16 } });
    // 7 prompt tokens, then the reply fills the context: 9 tokens.
    const t1 = await collect(() => engine.generate(turn('one two', { id: 'f', start: true, end: false }, { maxTokens: undefined })));
    expect(usageOf(t1)?.completionTokens).toBe(9);
    expect(finishOf(t1)).toBe('length');
    const forwards = backend.forwards.length;

    const t2 = await collect(() => engine.generate(turn('three', { id: 'f', start: false, end: false }, { maxTokens: 5 })));
    expect(types(t2)).toEqual(['start', 'finish', 'usage']);
    expect(finishOf(t2)).toBe('length');
    expect(usageOf(t2)).toMatchObject({ completionTokens: 0 });
    expect((t2[0] as { promptTokens: number }).promptTokens).toBeGreaterThan(16);
    expect(backend.forwards.length).toBe(forwards);
    await settle();
    expect(backend.live.size).toBe(0);

    // Not left busy, and a new start works.
    const t3 = await collect(() => engine.generate(turn('three', { id: 'f', start: true, end: false })));
    expect(textOf(t3)).toBe(' one two');
  });

  it('caps a session turn at the room left instead of rejecting it, and honours sessionLength', async () => {
    const { engine, backend } = makeEngine({ backend: { contextLength: 64 }, engine: { sessionLength: 12 } });
    let longest = 0;
    backend.afterForward = (_call, items) => items.forEach((i) => (longest = Math.max(longest, backend.history(i.seq)!.length)));
    // 7 prompt tokens, sessionLength 12: room for 5 although 10 were asked for.
    const t1 = await collect(() => engine.generate(turn('one two', { id: 'c', start: true, end: false }, { maxTokens: 10 })));
    expect(usageOf(t1)?.completionTokens).toBe(5);
    expect(finishOf(t1)).toBe('length');
    expect(longest).toBe(11);
    // A request without a session is not bound by sessionLength.
    const plain = await collect(() => engine.generate(request({ prompt: 'one two', maxTokens: 15 })));
    expect(usageOf(plain)?.completionTokens).toBe(15);
    const t2 = await collect(() => engine.generate(turn('three', { id: 'c', start: false, end: false })));
    expect(types(t2)).toEqual(['start', 'finish', 'usage']);
  });

  it('a cancelled turn does not record a reply and frees the session', async () => {
    const { engine, backend } = makeEngine();
    let deltas = 0;
    for await (const event of engine.generate(turn('red', { id: 'x', start: true, end: false }, { maxTokens: 10 }))) {
      if (event.type === 'delta' && ++deltas === 2) break;
    }
    await settle();
    await collect(() => engine.generate(turn('blue', { id: 'x', start: false, end: false })));
    expect(backend.forwardedItems.filter((i) => i.tokens.length > 1).at(-1)!.tokens).toEqual([BOS, ...ids('user : blue assistant :')]);
  });

  it('a turn cancelled while its last step is in flight does not record a reply', async () => {
    const { engine, backend } = makeEngine();
    // Hold the second step (the one that produces the last token) until the client has gone.
    let started!: () => void;
    let go!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    backend.beforeForward = (call) => (call === 1 ? new Promise<void>((resolve) => ((go = resolve), started())) : undefined);
    for await (const event of engine.generate(turn('red', { id: 'x', start: true, end: false }, { maxTokens: 2 }))) {
      if (event.type === 'delta') {
        await inFlight;
        break;
      }
    }
    go();
    await settle(10);
    expect(backend.forwards).toHaveLength(2);
    backend.beforeForward = undefined;
    await collect(() => engine.generate(turn('blue', { id: 'x', start: false, end: false })));
    expect(backend.forwardedItems.filter((i) => i.tokens.length > 1).at(-1)!.tokens).toEqual([BOS, ...ids('user : blue assistant :')]);
  });

  it('a failed turn does not record a reply and frees the session', async () => {
    const { engine, backend } = makeEngine();
    backend.failWhen = (call) => (call === 1 ? new Error('boom') : undefined);
    const failed = await attempt(() => engine.generate(turn('red', { id: 'y', start: true, end: false }, { maxTokens: 10 })));
    expect((failed.error as Error).message).toBe('boom');
    await settle();
    await collect(() => engine.generate(turn('blue', { id: 'y', start: false, end: false })));
    expect(backend.forwardedItems.filter((i) => i.tokens.length > 1).at(-1)!.tokens).toEqual([BOS, ...ids('user : blue assistant :')]);
  });

  it('a rejected turn (bad request) leaves the session usable', async () => {
    const { engine } = makeEngine();
    const bad = await attempt(() => engine.generate(turn('red', { id: 'z', start: true, end: false }, { n: 2, sampling: { numBeams: 2 } })));
    expect(bad.error).toMatchObject({ status: 400 });
    const ok = await attempt(() => engine.generate(turn('red', { id: 'z', start: false, end: false })));
    expect(ok.error).toBeUndefined();
  });

  it('rejects token-id prompts in a session', async () => {
    const { engine } = makeEngine();
    const { error } = await attempt(() =>
      engine.generate(request({ input: { kind: 'tokens', tokens: [BOS, 3] }, session: { id: 't', start: true, end: false } })),
    );
    expect(error).toMatchObject({ status: 400 });
  });

  it.each([0, 1])('the next turn can start as soon as the previous stream has ended (forward delay %i ms)', async (delayMs) => {
    const { engine } = makeEngine({ backend: { delayMs } });
    for (const [i, word] of ['one', 'two', 'three'].entries()) {
      const next = await attempt(() => engine.generate(turn(word, { id: 'q', start: i === 0, end: false })));
      expect(next.error).toBeUndefined();
    }
    // Also with a concurrent job keeping the scheduler busy.
    const other = collect(() => engine.generate(request({ prompt: 'one', maxTokens: 12 })));
    for (const word of ['four', 'five']) {
      const next = await attempt(() => engine.generate(turn(word, { id: 'q', start: false, end: false })));
      expect(next.error).toBeUndefined();
    }
    await other;
  });
});

describe('SessionStore', () => {
  const text = (t: string) => ({ kind: 'text' as const, text: t });
  const ctl = (id: string, start = false, end = false): SessionControl => ({ id, start, end });

  function finishTurn(store: SessionStore, id: string, prompt: string, reply: string, start = false) {
    const open = store.open(ctl(id, start), text(prompt));
    open.commit(reply);
    open.release();
    return open;
  }

  /** The history a new turn on `id` would see (opens and releases a turn, which touches the session). */
  function historyOf(store: SessionStore, id: string): string[] {
    const open = store.open(ctl(id), text('?'));
    open.release();
    return open.messages.slice(0, -1).map((m) => `${m.role}:${m.content}`);
  }

  it('builds the conversation from the history and this turn', () => {
    const store = new SessionStore();
    const first = finishTurn(store, 'a', 'hi', 'hello');
    expect(first.messages).toEqual([{ role: 'user', content: 'hi' }]);
    const second = store.open(ctl('a'), text('again'));
    expect(second.messages).toEqual([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'again' }]);
  });

  it('hands the committed context to the next text turn, not to a message-list turn or after start', () => {
    const store = new SessionStore();
    const turn = { promptText: 'P', tokens: [1, 2, 3] };
    const first = store.open(ctl('a', true), text('hi'));
    expect(first.context).toBeUndefined();
    first.commit('R', turn);
    first.release();
    const next = store.open(ctl('a'), text('more'));
    expect(next.context).toEqual({ promptText: 'P', reply: 'R', tokens: [1, 2, 3] });
    next.commit('R2'); // no tokens (a stop string cut the reply): the context is gone
    next.release();
    const after = store.open(ctl('a'), text('x'));
    expect(after.context).toBeUndefined();
    after.commit('R3', turn);
    after.release();
    const list = store.open(ctl('a'), { kind: 'messages', messages: [{ role: 'user', content: 'q' }] });
    expect(list.context).toBeUndefined();
    list.release();
    const restarted = store.open(ctl('a', true), text('y'));
    expect(restarted.context).toBeUndefined();
    restarted.release();
  });

  it('a message-list prompt is taken as the whole conversation', () => {
    const store = new SessionStore();
    finishTurn(store, 'a', 'hi', 'hello');
    const messages = [{ role: 'system' as const, content: 'sys' }, { role: 'user' as const, content: 'q' }];
    const open = store.open(ctl('a'), { kind: 'messages', messages });
    expect(open.messages).toEqual(messages);
    open.commit('r');
    open.release();
    expect(historyOf(store, 'a')).toEqual(['system:sys', 'user:q', 'assistant:r']);
  });

  it('a turn without commit keeps the old history', () => {
    const store = new SessionStore();
    finishTurn(store, 'a', 'hi', 'hello');
    store.open(ctl('a'), text('lost')).release();
    expect(historyOf(store, 'a')).toEqual(['user:hi', 'assistant:hello']);
  });

  it('is busy while open, 409 for a second open, free after release (release twice is harmless)', () => {
    const store = new SessionStore();
    const open = store.open(ctl('a', true), text('x'));
    expect(() => store.open(ctl('a'), text('y'))).toThrow(expect.objectContaining({ status: 409, code: 'session_busy' }));
    expect(() => store.open(ctl('a', true), text('y'))).toThrow(expect.objectContaining({ status: 409 }));
    open.release();
    open.release();
    const again = store.open(ctl('a'), text('y'));
    expect(() => store.open(ctl('a'), text('z'))).toThrow(expect.objectContaining({ status: 409 }));
    again.release();
  });

  it('end forgets the session on release; a later turn with the same id starts fresh', () => {
    const store = new SessionStore();
    finishTurn(store, 'a', 'hi', 'hello');
    const ending = store.open(ctl('a', false, true), text('bye'));
    expect(store.size).toBe(1);
    ending.commit('ciao');
    ending.release();
    expect(store.size).toBe(0);
    expect(historyOf(store, 'a')).toEqual([]);
  });

  it('an ended turn does not delete a session restarted meanwhile', () => {
    const store = new SessionStore();
    const ending = store.open(ctl('a', true, true), text('x'));
    ending.release();
    const fresh = store.open(ctl('a', true), text('y'));
    ending.release(); // stale release: ignored
    fresh.commit('z');
    fresh.release();
    expect(historyOf(store, 'a')).toEqual(['user:y', 'assistant:z']);
  });

  it('evicts idle sessions beyond maxSessions, least recently used first', () => {
    const store = new SessionStore(2);
    finishTurn(store, 'a', 'a1', 'ra');
    finishTurn(store, 'b', 'b1', 'rb');
    finishTurn(store, 'a', 'a2', 'ra2'); // a is now the most recently used
    finishTurn(store, 'c', 'c1', 'rc'); // evicts b
    expect(store.size).toBe(2);
    expect(historyOf(store, 'a')).toEqual(['user:a1', 'assistant:ra', 'user:a2', 'assistant:ra2']);
    expect(historyOf(store, 'c')).toEqual(['user:c1', 'assistant:rc']);
    // b was forgotten: opening it again starts fresh (and evicts the LRU, a).
    expect(historyOf(store, 'b')).toEqual([]);
    expect(store.size).toBe(2);
    expect(historyOf(store, 'c')).toEqual(['user:c1', 'assistant:rc']);
  });

  it('never evicts a busy session', () => {
    const store = new SessionStore(1);
    const a = store.open(ctl('a', true), text('a'));
    const b = store.open(ctl('b', true), text('b'));
    expect(store.size).toBe(2);
    a.commit('ra');
    a.release();
    b.release();
    finishTurn(store, 'c', 'c', 'rc');
    expect(store.size).toBe(1);
    expect(historyOf(store, 'c')).toEqual(['user:c', 'assistant:rc']);
  });
});

describe('turnSuffix', () => {
  const render = (template: ChatTemplate, ...contents: string[]) =>
    renderChat(template, contents.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content })), {} as Tokenizer).text;

  it.each([
    ['chatml', '<|im_end|>\n<|im_start|>user\nnext<|im_end|>\n<|im_start|>assistant\n'],
    ['llama-2', ' </s><s>[INST] next [/INST]'],
    ['alpaca', '\n\n### Instruction:\nnext\n\n### Response: '],
    ['raw', '\nnext'],
  ] as const)('%s: the text after the reply, from the end-of-turn marker to the assistant prefix', (template, suffix) => {
    const promptText = render(template, 'first');
    // The model's reply as generated, with the leading space the templates that trim drop.
    const reply = template === 'llama-2' ? ' hello there ' : 'hello there';
    const rendered = render(template, 'first', reply, 'next');
    expect(turnSuffix({ promptText, reply }, rendered)).toBe(suffix);
  });

  it('an empty reply leaves everything after the previous prompt', () => {
    expect(turnSuffix({ promptText: 'A:', reply: '' }, 'A: </s>B:')).toBe(' </s>B:');
  });

  it('is undefined when the template rewrote history or dropped the reply', () => {
    expect(turnSuffix({ promptText: 'SYS A:', reply: 'r' }, 'SYS2 A: r B:')).toBeUndefined();
    expect(turnSuffix({ promptText: 'A:', reply: '<think>x</think> r' }, 'A: r B:')).toBeUndefined();
    // Only whitespace may come between the previous prompt and the reply.
    expect(turnSuffix({ promptText: 'A:', reply: 'r' }, 'A: [r] B:')).toBeUndefined();
  });
});
