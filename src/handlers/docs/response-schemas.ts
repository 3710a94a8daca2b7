/**
 * What the endpoints answer, as zod schemas: the OpenAPI document's response schemas are generated
 * from these, and the docs tests parse real handler responses with them, so a field a handler starts
 * sending without documenting it fails a test (zod strips unknown keys; the test compares).
 * @module
 */
import { z } from 'zod';
import type { ErrorType } from '../../errors.js';

const finishReason = z.enum(['stop', 'length']).describe("'stop': EOS or a stop string/token; 'length': the token limit or a full context");
const usage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  prompt_tokens_details: z.object({
    cached_tokens: z.number().int().describe('Prompt tokens whose KV was reused (prefix cache or session history), not computed again'),
  }),
});
const streamUsage = usage.nullish().describe('With stream_options.include_usage: null on choice chunks, the totals on the last chunk (which has no choices)');

export const modelSchema = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
  max_model_len: z.number().int().describe('Context length in tokens'),
  parent: z.string().nullable().describe("A LoRA adapter's base model id (vLLM's field); null for a base model"),
});

export const modelListSchema = z.object({ object: z.literal('list'), data: z.array(modelSchema) });

const completionLogprobs = z.object({
  tokens: z.array(z.string()),
  token_logprobs: z.array(z.number()),
  top_logprobs: z.array(z.record(z.string(), z.number())),
  text_offset: z.array(z.number().int()),
});

const completionBase = { id: z.string(), object: z.literal('text_completion'), created: z.number().int(), model: z.string() };

export const completionSchema = z.object({
  ...completionBase,
  choices: z.array(z.object({ index: z.number().int(), text: z.string(), logprobs: completionLogprobs.nullable(), finish_reason: finishReason })),
  usage,
});

export const completionChunkSchema = z.object({
  ...completionBase,
  choices: z.array(
    z.object({ index: z.number().int(), text: z.string(), logprobs: completionLogprobs.nullable(), finish_reason: finishReason.nullable() }),
  ),
  usage: streamUsage,
});

const topLogprob = z.object({ token: z.string(), logprob: z.number(), bytes: z.array(z.number().int()) });
const chatLogprobs = z.object({ content: z.array(topLogprob.extend({ top_logprobs: z.array(topLogprob) })), refusal: z.null() });
const chatBase = { id: z.string(), created: z.number().int(), model: z.string(), system_fingerprint: z.null() };

export const chatCompletionSchema = z.object({
  ...chatBase,
  object: z.literal('chat.completion'),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({ role: z.literal('assistant'), content: z.string() }),
      logprobs: chatLogprobs.nullable(),
      finish_reason: finishReason,
    }),
  ),
  usage,
});

export const chatCompletionChunkSchema = z.object({
  ...chatBase,
  object: z.literal('chat.completion.chunk'),
  choices: z.array(
    z.object({
      index: z.number().int(),
      delta: z.object({ role: z.literal('assistant').optional(), content: z.string().optional() }).describe('The first chunk of a choice carries the role'),
      logprobs: chatLogprobs.nullable(),
      finish_reason: finishReason.nullable(),
    }),
  ),
  usage: streamUsage,
});

export const embeddingListSchema = z.object({
  object: z.literal('list'),
  data: z.array(
    z.object({
      object: z.literal('embedding'),
      index: z.number().int(),
      embedding: z.union([z.array(z.number()), z.string()]).describe('Floats, or with encoding_format "base64" their little-endian float32 bytes'),
    }),
  ),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
});

export const generateResponseSchema = z.object({
  text: z.string(),
  tokens: z.number().int().describe('Tokens generated'),
  finish_reason: finishReason,
  input_tokens: z.number().int().describe('Tokens in the prompt of this call'),
  history_tokens: z.number().int().describe("Of those, tokens whose KV was kept from earlier (the session's history, or a shared prefix)"),
});

export const generateChunkSchema = z.object({
  text: z.string(),
  tokens: z.number().int().describe('Tokens generated so far'),
  finish_reason: finishReason.nullable().describe('null until the last line'),
});

export const encodeResponseSchema = z.object({
  input_ids: z.union([z.array(z.number().int()), z.array(z.array(z.number().int()))]).describe('The token ids (a list per prompt for a list input)'),
  length: z.union([z.number().int(), z.array(z.number().int())]).describe('How many ids (one count per prompt for a list input)'),
});

const runtimeStatus = z.enum(['loading', 'ready', 'draining', 'closed', 'failed']);

export const healthSchema = z.object({ status: z.enum(['ok', 'loading', 'draining', 'closed', 'failed']) });

export const rootSchema = z.object({
  name: z.literal('edgellm'),
  status: runtimeStatus,
  models: z.array(z.string()),
  endpoints: z.array(z.string()),
  docs: z.string().describe('Path of the Swagger UI'),
  openapi: z.string().describe('Path of this OpenAPI document'),
  ui: z.string().describe('Path of the web chat UI'),
});

const ERROR_TYPES = [
  'invalid_request_error',
  'authentication_error',
  'not_found_error',
  'conflict_error',
  'rate_limit_error',
  'server_error',
  'service_unavailable',
] as const satisfies readonly ErrorType[];
// Does not compile when errors.ts gains an error type that this list lacks.
type AssertNever<T extends never> = T;
export type UndocumentedErrorTypes = AssertNever<Exclude<ErrorType, (typeof ERROR_TYPES)[number]>>;

export const errorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.enum(ERROR_TYPES),
    param: z.string().nullable().describe('The request field at fault, e.g. "messages[0].content"'),
    code: z.string().nullable().describe('e.g. context_length_exceeded, model_not_found, invalid_api_key, unsupported_parameter'),
  }),
});
