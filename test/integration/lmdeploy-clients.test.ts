/**
 * lmdeploy's Python `APIClient` against the real server, by replaying the exact bodies it posts
 * (`json=pload`, where pload is the method's locals: every default, and `kwargs: {}`), written as
 * Python's json.dumps writes them (1.0, null). 0.12.x: `chat_completions_v1`; 0.2.x:
 * `chat_interactive_v1` through `chat()` and `end_session()`, and `encode()`. Responses are read as
 * that client reads them (SSE `data:` lines for chat, one JSON object per line for interactive).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const dir = sharedModel(STORIES);

/** lmdeploy 0.12.3 `APIClient.chat_completions_v1(model, messages)` with every other argument at its default. */
const chatCompletionsV1 = (model: string, messages: string, stream: boolean) =>
  `{"model": ${JSON.stringify(model)}, "messages": ${JSON.stringify(messages)}, "temperature": 0.7, "top_p": 1.0, "logprobs": false, ` +
  `"top_logprobs": 0, "n": 1, "max_completion_tokens": null, "max_tokens": null, "stop": null, "stream": ${stream}, ` +
  `"presence_penalty": 0.0, "frequency_penalty": 0.0, "user": null, "repetition_penalty": 1.0, "ignore_eos": false, ` +
  `"skip_special_tokens": true, "spaces_between_special_tokens": true, "top_k": 40, "min_new_tokens": null, "min_p": 0.0, ` +
  `"logit_bias": null, "stream_options": null, "kwargs": {}}`;

/** lmdeploy 0.2.6 `APIClient.chat(prompt, session_id, stream=...)` -> chat_interactive_v1's pload. */
const chatInteractiveV1 = (prompt: string, sessionId: number, stream: boolean) =>
  `{"prompt": ${JSON.stringify(prompt)}, "session_id": ${sessionId}, "interactive_mode": true, "stream": ${stream}, "stop": null, ` +
  `"request_output_len": 512, "top_p": 0.8, "top_k": 40, "temperature": 0.8, "repetition_penalty": 1.0, "ignore_eos": false, ` +
  `"skip_special_tokens": true, "kwargs": {}}`;

/** lmdeploy 0.2.6 `APIClient.end_session(session_id)`. */
const endSession = (sessionId: number) =>
  `{"prompt": "", "session_id": ${sessionId}, "interactive_mode": false, "stream": false, "stop": null, "request_output_len": 0, ` +
  `"top_p": 0.8, "top_k": 40, "temperature": 0.8, "repetition_penalty": 1.0, "ignore_eos": false, "skip_special_tokens": true, "kwargs": {}}`;

/** lmdeploy 0.2.6 / 0.12.3 `APIClient.encode(input)`. */
const encode = (input: string | string[], addBos = true) => `{"input": ${JSON.stringify(input)}, "do_preprocess": false, "add_bos": ${addBos ? 'true' : 'false'}}`;

/** What the client does with a body: iter_lines, skip empty ones, strip `data: `, skip `[DONE]`, json.loads the rest. */
async function clientLines(res: Response, sse: boolean): Promise<any[]> {
  const text = await res.text();
  return text
    .split('\n')
    .filter((line) => line !== '' && line !== 'data: [DONE]')
    .map((line) => JSON.parse(sse && line.startsWith('data: ') ? line.slice(6) : line));
}

describe.skipIf(!dir)("lmdeploy's APIClient against the real server (stories260K)", () => {
  let server: CliServer;
  const post = (path: string, body: string) => fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  beforeAll(async () => {
    server = await startCli([dir!, '--model-name', 'internlm-chat-7b', '--dtype', 'fp32']);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('0.12.x chat_completions_v1 with its defaults (messages as a string, logprobs false, top_logprobs 0), plain and streamed', async () => {
    const res = await post('/v1/chat/completions', chatCompletionsV1('internlm-chat-7b', 'Once upon a time', false));
    expect(res.status, await res.clone().text()).toBe(200);
    const [reply] = await clientLines(res, false);
    expect(reply.choices[0].message.content.length).toBeGreaterThan(0);
    expect(reply.choices[0].logprobs ?? null).toBeNull();

    const streamed = await clientLines(await post('/v1/chat/completions', chatCompletionsV1('internlm-chat-7b', 'Once upon a time', true)), true);
    expect(streamed.length).toBeGreaterThan(2);
    expect(streamed.at(-1).choices[0].finish_reason).toMatch(/stop|length/);
  });

  it('0.2.x chat(): two turns of one interactive session, the second continuing the first, then end_session()', async () => {
    const first = await clientLines(await post('/v1/chat/interactive', chatInteractiveV1('Once upon a time', 7, true)), false);
    expect(first.at(-1).finish_reason).toMatch(/stop|length/);
    const firstTokens = first.at(-1).tokens;
    expect(firstTokens).toBeGreaterThan(0);

    const second = await (await post('/v1/chat/interactive', chatInteractiveV1('The end', 7, false))).json();
    expect(second).toMatchObject({ finish_reason: expect.stringMatching(/stop|length/) });
    // The kept history is in this turn's prompt: more input tokens than the new text alone.
    const alone = await (await post('/v1/encode', encode('The end'))).json();
    expect(second.input_tokens).toBeGreaterThan(alone.length + firstTokens);

    const ended = await post('/v1/chat/interactive', endSession(7));
    expect(ended.status, await ended.clone().text()).toBe(200);
    expect(await ended.json()).toMatchObject({ text: '', tokens: 0 });

    // The session is gone: the same id starts afresh (its prompt is only the new text again).
    const fresh = await (await post('/v1/chat/interactive', chatInteractiveV1('The end', 7, false))).json();
    expect(fresh.input_tokens).toBeLessThan(second.input_tokens);
    await post('/v1/chat/interactive', endSession(7));
  });

  it('0.2.x encode(): ids and length for a string and for a list, with and without BOS', async () => {
    const one = await (await post('/v1/encode', encode('Once upon a time'))).json();
    expect(one.input_ids[0]).toBe(1); // stories260K's BOS
    expect(one.length).toBe(one.input_ids.length);
    const noBos = await (await post('/v1/encode', encode('Once upon a time', false))).json();
    expect(noBos.input_ids).toEqual(one.input_ids.slice(1));
    const list = await (await post('/v1/encode', encode(['Once upon a time', 'Lily']))).json();
    expect(list.input_ids[0]).toEqual(one.input_ids);
    expect(list.length).toEqual(list.input_ids.map((ids: number[]) => ids.length));
  });
});
