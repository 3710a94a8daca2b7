/**
 * POST /v1/chat/completions: multi-turn chat with the model's chat template, streamed as
 * OpenAI chunks (same id and created on every chunk, role first, finish_reason last, and a
 * usage chunk with empty choices only when stream_options.include_usage asks for it).
 * @module
 */
import type { FinishReason, GenerationEvent, TokenLogprob } from '../../runtime/types.js';
import { newId, nowSeconds, type Handler } from '../context.js';
import { toChatLogprobs } from '../shared/logprobs-format.js';
import { readJson } from '../shared/read-json.js';
import { startGeneration } from '../shared/start-generation.js';
import { CHAT_FIELDS } from '../shared/wire-fields.js';
import { jsonResponse, streamResponse } from '../shared/stream-response.js';
import { validate } from '../shared/validate.js';
import { chatRequestSchema, checkChatRequest, toGenerateRequest } from './schema.js';

type ToolCallEvent = Extract<GenerationEvent, { type: 'toolCall' }>;
interface ToolCallJson {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A streamed piece of a tool call: id, type and name first, then arguments, keyed by `index`. */
function toolCallDelta(event: ToolCallEvent) {
  return event.id !== undefined
    ? { index: event.call, id: event.id, type: 'function', function: { name: event.name, arguments: '' } }
    : { index: event.call, function: { arguments: event.arguments } };
}

function addToolCall(message: { tool_calls?: ToolCallJson[] }, event: ToolCallEvent): void {
  const calls = (message.tool_calls ??= []);
  if (event.id !== undefined) calls[event.call] = { id: event.id, type: 'function', function: { name: event.name ?? '', arguments: '' } };
  else calls[event.call].function.arguments += event.arguments ?? '';
}

export const handleChatCompletions: Handler = async (request, ctx) => {
  const body = validate(chatRequestSchema, await readJson(request, ctx));
  checkChatRequest(body);
  const { start, events } = await startGeneration(ctx.runtime, toGenerateRequest(body, request.signal), {
    ...CHAT_FIELDS,
    maxTokens: body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens',
  });
  const n = body.n ?? 1;
  const model = body.model || ctx.runtime.models()[0].id;
  const id = newId('chatcmpl');
  const created = nowSeconds();
  const usage = { prompt_tokens: start.promptTokens, completion_tokens: 0, total_tokens: 0 };
  const iterable = { [Symbol.asyncIterator]: () => events };

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (index: number, delta: object, finish: FinishReason | null, entries?: TokenLogprob[]) => ({
      id, object: 'chat.completion.chunk', created, model, system_fingerprint: null,
      choices: [{ index, delta, logprobs: entries ? { content: toChatLogprobs(entries), refusal: null } : null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    async function* chunks() {
      // try/finally: a client that cancels before the event loop below started must still stop the generation.
      try {
        for (let index = 0; index < n; index++) yield chunk(index, { role: 'assistant', content: '' }, null);
        for await (const event of iterable) {
          if (event.type === 'delta' && (event.text || event.logprobs)) yield chunk(event.index, { content: event.text }, null, event.logprobs);
          if (event.type === 'toolCall') yield chunk(event.index, { tool_calls: [toolCallDelta(event)] }, null);
          if (event.type === 'finish') yield chunk(event.index, {}, event.reason);
          if (event.type === 'usage') usage.completion_tokens = event.completionTokens;
        }
      } finally {
        await events.return?.();
      }
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      if (includeUsage) yield { id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [], usage };
    }
    return streamResponse('sse', chunks(), ctx.onError);
  }

  const choices = Array.from({ length: n }, (_, index) => ({
    index,
    message: { role: 'assistant' as const, content: '' as string | null, tool_calls: undefined as ToolCallJson[] | undefined },
    logprobs: body.logprobs ? { content: [] as ReturnType<typeof toChatLogprobs>, refusal: null } : null,
    finish_reason: 'stop' as FinishReason,
  }));
  for await (const event of iterable) {
    if (event.type === 'delta') choices[event.index].message.content += event.text;
    if (event.type === 'toolCall') addToolCall(choices[event.index].message, event);
    if (event.type === 'delta' && event.logprobs) choices[event.index].logprobs?.content.push(...toChatLogprobs(event.logprobs));
    if (event.type === 'finish') choices[event.index].finish_reason = event.reason;
    if (event.type === 'usage') usage.completion_tokens = event.completionTokens;
  }
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  // OpenAI: a reply that only calls tools (blank space aside) has `content: null`; one without calls has no `tool_calls`.
  for (const { message } of choices) if (message.tool_calls && !message.content?.trim()) message.content = null;
  return jsonResponse({ id, object: 'chat.completion', created, model, system_fingerprint: null, choices, usage });
};
