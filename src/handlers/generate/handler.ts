/**
 * POST /generate: lmdeploy's native endpoint. Streams newline-delimited JSON lines
 * `{"text","tokens","finish_reason"}` where `tokens` counts the tokens generated so far.
 * @module
 */
import type { FinishReason } from '../../runtime/types.js';
import type { Handler } from '../context.js';
import { readJson } from '../shared/read-json.js';
import { startGeneration } from '../shared/start-generation.js';
import { GENERATE_FIELDS } from '../shared/wire-fields.js';
import { jsonResponse, streamResponse } from '../shared/stream-response.js';
import { validate } from '../shared/validate.js';
import { generateRequestSchema, toGenerateRequest } from './schema.js';

export const handleGenerate: Handler = async (request, ctx) => {
  const body = validate(generateRequestSchema, await readJson(request, ctx));
  const { start, events } = await startGeneration(ctx.runtime, toGenerateRequest(body, request.signal), {
    ...GENERATE_FIELDS,
    maxTokens: body.request_output_len == null && body.max_tokens != null ? 'max_tokens' : 'request_output_len',
  });
  const iterable = { [Symbol.asyncIterator]: () => events };
  let tokens = 0;

  if (body.stream) {
    async function* lines() {
      for await (const event of iterable) {
        if (event.type === 'delta') tokens += event.tokens.length;
        if (event.type === 'delta' && event.text) yield { text: event.text, tokens, finish_reason: null };
        if (event.type === 'finish') yield { text: '', tokens, finish_reason: event.reason };
      }
    }
    return streamResponse('ndjson', lines(), ctx.onError);
  }

  let text = '';
  let finishReason: FinishReason = 'stop';
  for await (const event of iterable) {
    if (event.type === 'delta') {
      text += event.text;
      tokens += event.tokens.length;
    }
    if (event.type === 'finish') finishReason = event.reason;
  }
  return jsonResponse({ text, tokens, finish_reason: finishReason, input_tokens: start.promptTokens });
};
