/**
 * POST /v1/chat/completions request schema and its mapping to an engine request. Messages take
 * OpenAI's `content` (a string or text parts) or the Chinese-LLaMA-Alpaca demo's `message` key.
 * @module
 */
import { z } from 'zod';
import { invalidRequest } from '../../errors.js';
import type { ChatMessage, GenerateRequest, SamplingParams } from '../../runtime/types.js';
import { constraintFields, toConstraint } from '../shared/constraint-fields.js';
import { rejectUnsupported, samplingFields, toGenerationFields } from '../shared/sampling-schema.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(textPart)]).nullish(),
  message: z.string().nullish(),
  name: z.string().nullish(),
});

export const chatRequestSchema = z.object({
  model: z.string().nullish(),
  messages: z.array(messageSchema).min(1, 'must contain at least one message'),
  max_tokens: z.number().int().min(0).nullish(),
  max_completion_tokens: z.number().int().min(0).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().nullish(),
  ...constraintFields,
  ...samplingFields,
});

export type ChatRequest = z.output<typeof chatRequestSchema>;

const DEFAULTS: Partial<SamplingParams> = { temperature: 1, topP: 1 };

export function checkChatRequest(body: ChatRequest): void {
  if (body.top_logprobs !== undefined && body.top_logprobs !== null && body.logprobs !== true) {
    throw invalidRequest('top_logprobs needs logprobs: true.', 'top_logprobs');
  }
  rejectUnsupported(body, {
    tools: (v) => (v as unknown[]).length > 0,
  });
}

export function toMessages(body: ChatRequest): ChatMessage[] {
  return body.messages.map((m, i) => {
    const content = m.content ?? m.message;
    if (content === null || content === undefined) {
      throw invalidRequest(`messages[${i}] needs a 'content' (or 'message') field.`, `messages[${i}].content`);
    }
    const text = typeof content === 'string' ? content : content.map((part) => part.text).join('');
    return { role: m.role === 'developer' ? 'system' : m.role, content: text };
  });
}

export function toGenerateRequest(body: ChatRequest, signal?: AbortSignal): GenerateRequest {
  return {
    ...toGenerationFields(body, DEFAULTS, signal),
    input: { kind: 'messages', messages: toMessages(body) },
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
    constraint: toConstraint(body),
  };
}
