/**
 * Errors from the real engine (on the fake backend) through each endpoint: the runtime names its
 * own fields, and every handler answers with the field the client sent, never a 5xx.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../app/create-app.js';
import { FakeEmbeddingBackend, FakeTokenizer, makeEngine, VOCAB_SIZE } from '../../../test/fixtures/fake-backend.js';
import { expect400, postJson, type Json } from '../../../test/helpers/handler-requests.js';
import type { Tokenizer } from '../../runtime/tokenizer.js';

/** The fake word tokenizer with a byte table, so the engine knows its vocabulary (as hf tokenizers do). */
class SizedTokenizer extends FakeTokenizer {
  constructor(private readonly size: number) {
    super({ chatTemplate: false });
  }
  tokenBytes(): (Uint8Array | null)[] {
    return new Array(this.size).fill(null);
  }
}

function setup(options: { advice?: boolean; template?: boolean } = {}) {
  const { engine } = makeEngine({
    backend: { contextLength: 16, kvBytesPerToken: 4 },
    tokenizer: { chatTemplate: options.template ?? true },
    engine: {
      embedding: { backend: new FakeEmbeddingBackend(4), tokenizer: new SizedTokenizer(10) as Tokenizer, name: 'embedder', contextLength: 8 },
      advice: options.advice ? { unknownModel: '(Pass --model-name.)', noChatTemplate: 'Pass --chat-template.' } : undefined,
    },
  });
  return createApp({ runtime: engine });
}

const long = Array.from({ length: 15 }, () => 'one').join(' ');
const post = (app: ReturnType<typeof setup>, path: string, body: unknown) => postJson(app, `http://test${path}`, body);

describe('runtime errors in wire field names', () => {
  it('/v1/completions: prompt, max_tokens, logit_bias', async () => {
    const app = setup();
    await expect400(await post(app, '/v1/completions', { prompt: [1, VOCAB_SIZE] }), 'prompt');
    await expect400(await post(app, '/v1/completions', { prompt: `${long} one` }), 'prompt', 'context_length_exceeded');
    await expect400(await post(app, '/v1/completions', { prompt: 'one', max_tokens: 15 }), 'max_tokens', 'context_length_exceeded');
    await expect400(await post(app, '/v1/completions', { prompt: 'one', logit_bias: { [VOCAB_SIZE]: 1 } }), 'logit_bias');
  });

  it('/v1/chat/completions: messages, max_tokens or max_completion_tokens', async () => {
    const app = setup();
    const messages = [{ role: 'user', content: long }];
    await expect400(await post(app, '/v1/chat/completions', { messages }), 'messages', 'context_length_exceeded');
    const short = [{ role: 'user', content: 'one' }];
    await expect400(await post(app, '/v1/chat/completions', { messages: short, max_tokens: 15 }), 'max_tokens', 'context_length_exceeded');
    await expect400(await post(app, '/v1/chat/completions', { messages: short, max_completion_tokens: 15 }), 'max_completion_tokens', 'context_length_exceeded');
  });

  it('/generate: prompt (a string too) and request_output_len; no length given fits the context', async () => {
    const app = setup();
    await expect400(await post(app, '/generate', { prompt: long, temperature: 0 }), 'prompt', 'context_length_exceeded');
    await expect400(await post(app, '/generate', { prompt: 'one', request_output_len: 15 }), 'request_output_len', 'context_length_exceeded');
    await expect400(await post(app, '/generate', { prompt: 'one', max_tokens: 15 }), 'max_tokens', 'context_length_exceeded');
    // No session, no length: as many tokens as the context leaves (the template's prompt is 6 tokens).
    const res = await post(app, '/generate', { prompt: 'one', temperature: 0, ignore_eos: true });
    expect(res.status).toBe(200);
    const body: Json = await res.json();
    expect(body).toMatchObject({ finish_reason: 'length', tokens: 16 - body.input_tokens });
  });

  it('/v1/embeddings: token ids beyond the embedding model’s vocabulary are a 400 on input', async () => {
    const app = setup();
    const bad = await expect400(await post(app, '/v1/embeddings', { model: 'embedder', input: [[1, 2, 10]] }), 'input');
    expect(bad.error.message).toMatch(/token id 10, outside the vocabulary of embedder \(0\.\.9\)/);
    expect((await post(app, '/v1/embeddings', { model: 'embedder', input: [[1, 2, 9]] })).status).toBe(200);
  });

  it('refuses embeddings from a generation model without a hidden state with a 400 on model', async () => {
    const { engine, backend } = makeEngine();
    (backend.info as { hiddenStates?: boolean }).hiddenStates = false;
    const body = await expect400(await post(createApp({ runtime: engine }), '/v1/embeddings', { input: 'one' }), 'model', 'model_not_supported');
    expect(body.error.message).toMatch(/has no hidden state to embed/);
  });

  it('adds the host’s advice, and no CLI flag without it', async () => {
    const plain = (await (await post(setup(), '/v1/completions', { model: 'nope', prompt: 'one' })).json()) as Json;
    expect(plain.error).toMatchObject({ param: 'model', code: 'model_not_found' });
    expect(plain.error.message).not.toMatch(/--/);
    const advised = (await (await post(setup({ advice: true }), '/v1/completions', { model: 'nope', prompt: 'one' })).json()) as Json;
    expect(advised.error.message).toMatch(/\(Pass --model-name\.\)$/);

    const chat = { messages: [{ role: 'user', content: 'one' }] };
    const none = await expect400(await post(setup({ template: false }), '/v1/chat/completions', chat), 'messages', 'chat_template_missing');
    expect(none.error.message).not.toMatch(/--/);
    const hinted = await expect400(await post(setup({ template: false, advice: true }), '/v1/chat/completions', chat), 'messages', 'chat_template_missing');
    expect(hinted.error.message).toMatch(/Pass --chat-template\.$/);
  });
});
