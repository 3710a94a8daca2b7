/**
 * The two conversations against the real handlers and engine (fake model, real HTTP): what goes
 * on the wire, and what the server then holds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeEngine, type FakeEngine } from '../../../test/fixtures/fake-backend.js';
import { createApp } from '../../app/create-app.js';
import { serve, type RunningServer } from '../../adapters/node/serve.js';
import { ChatHistory, GenerateSession } from './conversations.js';
import { createTransport, ServerError } from './transport.js';

interface Harness extends FakeEngine {
  server: RunningServer;
  /** Every POST body, with its path. */
  bodies: Array<{ path: string; body: any }>;
  transport: ReturnType<typeof createTransport>;
}

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(setup: Parameters<typeof makeEngine>[0] = {}): Promise<Harness> {
  // kvBytesPerToken turns on the engine's KV cache, so a session's KV is kept between turns.
  const fake = makeEngine({ ...setup, backend: { kvBytesPerToken: 16, contextLength: 256, ...setup.backend } });
  const app = createApp({ runtime: fake.engine, onError: () => {} });
  const bodies: Harness['bodies'] = [];
  const server = await serve(
    {
      fetch: async (request) => {
        if (request.method === 'POST') bodies.push({ path: new URL(request.url).pathname, body: await request.clone().json() });
        return app.fetch(request);
      },
    },
    { host: '127.0.0.1', port: 0 },
  );
  running = server;
  return { ...fake, server, bodies, transport: createTransport({ url: server.url }) };
}

const greedy = { temperature: 0, max_tokens: 3 };
/** What the model had read, in full, at the last prefill. */
const lastContext = (h: Harness) => h.tokenizer.decode(h.backend.prefilledContexts.at(-1)!);

describe('GenerateSession', () => {
  it('starts a session with the system prompt, then sends only each new message', async () => {
    const h = await start();
    const session = new GenerateSession(h.transport, { sessionId: 7, system: 'be brief' });
    const streamed: string[] = [];
    const first = await session.send('hello', greedy, (t) => streamed.push(t));
    // The fake tokenizer's pieces carry their leading space, as SentencePiece pieces do.
    expect(first).toEqual({ text: ' one two three', finishReason: 'length', tokens: 3, interrupted: false });
    expect(streamed.join('')).toBe(' one two three');
    expect(streamed.length).toBeGreaterThan(1); // streamed, not one piece at the end

    const second = await session.send('world', greedy, () => {});
    expect(second.text).toBe(' one two three');
    expect(h.bodies.map((b) => b.body)).toEqual([
      {
        prompt: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }],
        session_id: 7, sequence_start: true, sequence_end: false, stream: true, temperature: 0, request_output_len: 3,
      },
      { prompt: 'world', session_id: 7, sequence_start: false, sequence_end: false, stream: true, temperature: 0, request_output_len: 3 },
    ]);
    // The server kept the history: turn 2 was rendered with turn 1 in it.
    // (The system prompt's words are not in the fake vocabulary.)
    expect(lastContext(h)).toBe('system :<unk><unk> user : hello assistant : one two three user : world assistant :');
  });

  it('ends the session with sequence_end, and the server frees its KV', async () => {
    const h = await start();
    const session = new GenerateSession(h.transport, { sessionId: 9 });
    await session.send('hello', greedy, () => {});
    expect(h.backend.live.size).toBe(1); // the session's KV, kept for its next turn
    await session.end();
    expect(session.started).toBe(false);
    expect(h.bodies[1].body).toEqual({ prompt: '', session_id: 9, sequence_start: false, sequence_end: true, request_output_len: 0 });
    expect(h.backend.live.size).toBe(0);
    // The history is gone too: continuing id 9 is refused, not started from nothing.
    const lost = await fetch(`${h.server.url}/generate`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'world', session_id: 9, sequence_start: false, request_output_len: 1 }),
    });
    expect(lost.status).toBe(404);
    expect((await lost.json()).error.code).toBe('session_not_found');
    // Ending it again (the server forgot it already) is not an error.
    await session.send('again', greedy, () => {});
    await fetch(`${h.server.url}/generate`, {
      method: 'POST',
      body: JSON.stringify({ prompt: '', session_id: 9, sequence_start: false, sequence_end: true, request_output_len: 0 }),
    }).then((r) => r.text());
    await session.end();
    expect(session.started).toBe(false);
  });

  it('names the session in an X-Session-Id header too, for balancers', async () => {
    const h = await start();
    const seen: Array<string | null> = [];
    const transport = createTransport({
      url: h.server.url,
      fetch: (input, init) => {
        seen.push(new Headers(init?.headers).get('x-session-id'));
        return fetch(input, init);
      },
    });
    const session = new GenerateSession(transport, { sessionId: 31 });
    await session.send('hello', greedy, () => {});
    await session.end();
    expect(seen).toEqual(['31', '31']);
  });

  it('when the server no longer holds the session, resends the conversation to restart it, and says so', async () => {
    const h = await start();
    const session = new GenerateSession(h.transport, { sessionId: 21, system: 'sys' });
    await session.send('hello', greedy, () => {});
    const second = await session.send('world', greedy, () => {});
    expect(second.notice).toBeUndefined();
    // Another replica, a restart, an eviction: here the server simply forgets it.
    await fetch(`${h.server.url}/generate`, {
      method: 'POST',
      body: JSON.stringify({ prompt: '', session_id: 21, sequence_start: false, sequence_end: true, request_output_len: 0 }),
    }).then((r) => r.text());
    const third = await session.send('red', greedy, () => {});
    expect(third).toMatchObject({ text: ' one two three', finishReason: 'length', interrupted: false });
    expect(third.notice).toMatch(/no longer held session 21.*sent again/);
    expect(h.bodies.at(-2)!.body).toMatchObject({ prompt: 'red', sequence_start: false });
    expect(h.bodies.at(-1)!.body).toMatchObject({
      prompt: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: ' one two three' },
        { role: 'user', content: 'world' },
        { role: 'assistant', content: ' one two three' },
        { role: 'user', content: 'red' },
      ],
      session_id: 21,
      sequence_start: true,
    });
    // The whole history reached the model, and the session continues from there.
    expect(lastContext(h)).toBe(
      'system :<unk> user : hello assistant : one two three user : world assistant : one two three user : red assistant :',
    );
    const fourth = await session.send('blue', greedy, () => {});
    expect(fourth.notice).toBeUndefined();
    expect(h.bodies.at(-1)!.body).toMatchObject({ prompt: 'blue', sequence_start: false });
  });

  it('does not end a session that never started', async () => {
    const h = await start();
    await new GenerateSession(h.transport).end();
    expect(h.bodies).toEqual([]);
  });

  it('reset ends the session and moves to a new id; the system prompt applies again', async () => {
    const h = await start();
    const ids = [11, 12];
    const session = new GenerateSession(h.transport, { system: 'sys', newSessionId: () => ids.shift()! });
    await session.send('hello', greedy, () => {});
    expect(session.systemNote()).toMatch(/next conversation/);
    session.system = 'other';
    await session.send('world', greedy, () => {});
    expect(lastContext(h)).toBe('system :<unk> user : hello assistant : one two three user : world assistant :');
    await session.reset();
    expect(session.label).toBe('/generate session 12');
    await session.send('red', greedy, () => {});
    expect(h.bodies.map((b) => [b.body.session_id, b.body.sequence_start, b.body.sequence_end])).toEqual([
      [11, true, false],
      [11, false, false],
      [11, false, true],
      [12, true, false],
    ]);
    // A new session's first turn is rendered in full, with the new system prompt.
    expect(h.tokenizer.encoded.at(-1)!.text).toBe('<s> system : other user : red assistant :');
  });

  it('a reply stopped midway is not kept: the next message starts the session again', async () => {
    const h = await start({ backend: { delayMs: 20 } });
    const session = new GenerateSession(h.transport, { sessionId: 5, system: 'sys' });
    const controller = new AbortController();
    const cut = await session.send('hello', { temperature: 0, max_tokens: 12 }, () => controller.abort(), controller.signal);
    expect(cut.interrupted).toBe(true);
    expect(cut.finishReason).toBeNull();
    expect(cut.text.length).toBeGreaterThan(0);
    expect(session.started).toBe(false);
    // Sent at once: the server may still be cancelling the first turn (409), which is waited out.
    const next = await session.send('world', greedy, () => {});
    expect(next.text).toBe(' one two three');
    expect(h.bodies[h.bodies.length - 1].body).toMatchObject({ prompt: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'world' }], sequence_start: true });
  });

  it('waits out a session still busy with a cancelled turn (409 session_busy), and only that', async () => {
    const answers = [409, 409, 200];
    let calls = 0;
    const transport = createTransport({
      url: 'http://test',
      fetch: async () => {
        calls++;
        const status = answers.shift()!;
        if (status === 409) {
          return new Response('{"error":{"message":"Session 1 is busy","type":"conflict_error","code":"session_busy"}}', { status });
        }
        return new Response('{"text":"hi","tokens":1,"finish_reason":null}\n{"text":"","tokens":1,"finish_reason":"stop"}\n');
      },
    });
    const result = await new GenerateSession(transport, { sessionId: 1 }).send('x', {}, () => {});
    expect(result).toMatchObject({ text: 'hi', finishReason: 'stop' });
    expect(calls).toBe(3);

    const other = createTransport({
      url: 'http://test',
      fetch: async () => {
        calls++;
        return new Response('{"error":{"message":"no","type":"conflict_error","code":"other"}}', { status: 409 });
      },
    });
    calls = 0;
    await expect(new GenerateSession(other).send('x', {}, () => {})).rejects.toThrow('the server answered 409 conflict_error: no');
    expect(calls).toBe(1);
  });

  it('says so when the stream ends without a finish_reason', async () => {
    const transport = createTransport({ url: 'http://test', fetch: async () => new Response('{"text":"half","tokens":1,"finish_reason":null}\n') });
    await expect(new GenerateSession(transport).send('x', {}, () => {})).rejects.toThrow(
      'the reply stopped before it finished (did the server stop?)',
    );
  });

  it('an abort before the answer arrives is an interruption too', async () => {
    const h = await start();
    const controller = new AbortController();
    controller.abort();
    const result = await new GenerateSession(h.transport).send('hello', greedy, () => {}, controller.signal);
    expect(result).toEqual({ text: '', finishReason: null, interrupted: true });
  });

  it('throws the error the server sends inside the stream', async () => {
    const h = await start();
    h.backend.failWhen = (call) => (call >= 1 ? new Error('device lost') : undefined);
    const error = await new GenerateSession(h.transport).send('hello', { temperature: 0 }, () => {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerError);
    expect((error as Error).message).toMatch(/^the server failed during the reply \(server_error\): /);
  });

  it('throws HTTP errors with the status and message', async () => {
    const h = await start();
    const session = new GenerateSession(h.transport, { model: 'no-such-model' });
    const error = await session.send('hello', greedy, () => {}).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^the server answered 404 not_found_error: The model `no-such-model` does not exist\./);
    expect(session.started).toBe(false);
  });
});

describe('ChatHistory', () => {
  it('resends the whole history with the system prompt; reset clears it', async () => {
    const h = await start();
    const chat = new ChatHistory(h.transport, { system: 'sys', model: 'fake-model' });
    const streamed: string[] = [];
    const first = await chat.send('hello', greedy, (t) => streamed.push(t));
    expect(first).toEqual({ text: ' one two three', finishReason: 'length', interrupted: false });
    expect(streamed.length).toBeGreaterThan(1);
    await chat.send('world', greedy, () => {});
    expect(h.bodies[1]).toEqual({
      path: '/v1/chat/completions',
      body: {
        model: 'fake-model',
        stream: true,
        temperature: 0,
        max_tokens: 3,
        messages: [
          { role: 'system', content: 'sys' },
          { role: 'user', content: 'hello' },
          { role: 'assistant', content: ' one two three' },
          { role: 'user', content: 'world' },
        ],
      },
    });
    await chat.reset();
    chat.system = undefined;
    await chat.send('red', greedy, () => {});
    expect(h.bodies[2].body.messages).toEqual([{ role: 'user', content: 'red' }]);
  });

  it('keeps an interrupted turn out of the history', async () => {
    const h = await start({ backend: { delayMs: 20 } });
    const chat = new ChatHistory(h.transport);
    const controller = new AbortController();
    const cut = await chat.send('hello', { temperature: 0, max_tokens: 12 }, () => controller.abort(), controller.signal);
    expect(cut.interrupted).toBe(true);
    expect(chat.messages).toEqual([]);
  });
});
