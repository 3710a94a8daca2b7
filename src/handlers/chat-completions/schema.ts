/**
 * POST /v1/chat/completions request schema and its mapping to an engine request. Messages take
 * OpenAI's `content` (a string or text parts) or the Chinese-LLaMA-Alpaca demo's `message` key.
 * @module
 */
import { z } from 'zod';
import { invalidRequest } from '../../errors.js';
import type { ChatMessage, GenerateRequest, SamplingParams, ToolChoice, ToolsRequest } from '../../runtime/types.js';
import { rejectUnsupported, samplingFields, toGenerationFields } from '../shared/sampling-schema.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

const toolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function').default('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(textPart)]).nullish(),
  message: z.string().nullish(),
  name: z.string().nullish(),
  tool_calls: z.array(toolCallSchema).nullish(),
  tool_call_id: z.string().nullish(),
});

const functionName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . or -');

const toolSchema = z.object({
  type: z.literal('function'),
  function: z.object({
    name: functionName,
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});

const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) }),
]);

export const chatRequestSchema = z.object({
  model: z.string().nullish(),
  messages: z.array(messageSchema).min(1, 'must contain at least one message'),
  max_tokens: z.number().int().min(0).nullish(),
  max_completion_tokens: z.number().int().min(0).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(toolSchema).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: z.object({ type: z.string() }).passthrough().nullish(),
  ...samplingFields,
});

export type ChatRequest = z.output<typeof chatRequestSchema>;

const DEFAULTS: Partial<SamplingParams> = { temperature: 1, topP: 1 };

export function checkChatRequest(body: ChatRequest): void {
  if (body.top_logprobs !== undefined && body.top_logprobs !== null && body.logprobs !== true) {
    throw invalidRequest('top_logprobs needs logprobs: true.', 'top_logprobs');
  }
  rejectUnsupported(body, {
    response_format: (v) => (v as { type: string }).type !== 'text',
  });
}

/** `tools`, `tool_choice` and `parallel_tool_calls` as the engine takes them, checked against each other. */
export function toToolsRequest(body: ChatRequest): ToolsRequest | undefined {
  const definitions = (body.tools ?? []).map(({ function: f }) => ({
    name: f.name,
    ...(f.description != null && { description: f.description }),
    ...(f.parameters != null && { parameters: f.parameters }),
  }));
  const names = new Set<string>();
  definitions.forEach((d, i) => {
    if (names.has(d.name)) throw invalidRequest(`tools[${i}]: the function name '${d.name}' is used twice.`, `tools[${i}].function.name`);
    names.add(d.name);
  });
  const given = body.tool_choice;
  if (given != null && definitions.length === 0 && given !== 'none') {
    throw invalidRequest('tool_choice needs tools: list the functions the model may call.', 'tool_choice');
  }
  if (definitions.length === 0) return undefined;
  const choice: ToolChoice = given == null ? 'auto' : typeof given === 'string' ? given : { name: given.function.name };
  if (typeof choice === 'object' && !names.has(choice.name)) {
    throw invalidRequest(`tool_choice names '${choice.name}', which is not in tools (${[...names].join(', ')}).`, 'tool_choice');
  }
  return { definitions, choice, parallel: body.parallel_tool_calls ?? true };
}

export function toMessages(body: ChatRequest): ChatMessage[] {
  return body.messages.map((m, i) => {
    const content = m.content ?? m.message;
    const toolCalls = m.role === 'assistant' && m.tool_calls?.length ? m.tool_calls : undefined;
    if ((content === null || content === undefined) && !toolCalls) {
      throw invalidRequest(`messages[${i}] needs a 'content' (or 'message') field.`, `messages[${i}].content`);
    }
    const text = content == null ? '' : typeof content === 'string' ? content : content.map((part) => part.text).join('');
    return {
      role: m.role === 'developer' ? 'system' : m.role,
      content: text,
      ...(m.name != null && { name: m.name }),
      ...(toolCalls && { toolCalls: toolCalls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) }),
      ...(m.role === 'tool' && m.tool_call_id != null && { toolCallId: m.tool_call_id }),
    };
  });
}

export function toGenerateRequest(body: ChatRequest, signal?: AbortSignal): GenerateRequest {
  return {
    ...toGenerationFields(body, DEFAULTS, signal),
    input: { kind: 'messages', messages: toMessages(body) },
    tools: toToolsRequest(body),
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
  };
}
