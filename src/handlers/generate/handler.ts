/**
 * POST /generate and POST /v1/chat/interactive: lmdeploy's native endpoints (the second is its
 * 0.2-era name, with `interactive_mode` for the session controls). Streams newline-delimited JSON
 * lines `{"text","tokens","finish_reason"}` where `tokens` counts the tokens generated so far.
 * @module
 */
import type { FinishReason, GenerateRequest } from '../../runtime/types.js';
import type { Handler, HandlerContext } from '../context.js';
import { readJson } from '../shared/read-json.js';
import { startGeneration } from '../shared/start-generation.js';
import { GENERATE_FIELDS } from '../shared/wire-fields.js';
import { jsonResponse, streamResponse } from '../shared/stream-response.js';
import { validate } from '../shared/validate.js';
import { generateRequestSchema, toGenerateRequest, toInteractiveRequest, withSessionHeader, type GenerateBody } from './schema.js';

export const handleGenerate: Handler = (request, ctx) => serveLmdeploy(request, ctx, toGenerateRequest);
export const handleChatInteractive: Handler = (request, ctx) => serveLmdeploy(request, ctx, toInteractiveRequest);

async function serveLmdeploy(request: Request, ctx: HandlerContext, toRequest: (body: GenerateBody, signal?: AbortSignal) => GenerateRequest) {
  const body = withSessionHeader(validate(generateRequestSchema, await readJson(request, ctx)), request.headers.get('x-session-id'));
  const { start, events } = await startGeneration(ctx.runtime, toRequest(body, request.signal), {
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
  return jsonResponse({
    text, tokens, finish_reason: finishReason, input_tokens: start.promptTokens, history_tokens: start.cachedTokens ?? 0,
  });
}
