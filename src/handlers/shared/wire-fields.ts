/**
 * The runtime names request fields its own way (`input`, `maxTokens`, `logitBias`); an error's
 * `param` must name the field the client sent. Each endpoint maps the runtime's names to its wire
 * names here, once, as its errors leave the runtime.
 * @module
 */
import { isInferenceError, withParam } from '../../errors.js';
import type { RequestField } from '../../runtime/types.js';

export type WireFields = Record<RequestField, string>;

const OPENAI: WireFields = {
  model: 'model',
  input: 'prompt',
  n: 'n',
  logprobs: 'logprobs',
  maxTokens: 'max_tokens',
  logitBias: 'logit_bias',
  stopTokenIds: 'stop_token_ids',
  session: 'session_id',
};

export const COMPLETION_FIELDS: WireFields = OPENAI;
export const CHAT_FIELDS: WireFields = { ...OPENAI, input: 'messages' };
export const GENERATE_FIELDS: WireFields = { ...OPENAI, maxTokens: 'request_output_len' };
export const EMBEDDING_FIELDS: WireFields = { ...OPENAI, input: 'input' };

/** The error with its `param` in wire names; anything else unchanged. */
export function toWireError(error: unknown, fields: WireFields): unknown {
  if (!isInferenceError(error) || error.param === null || !Object.hasOwn(fields, error.param)) return error;
  return withParam(error, fields[error.param as RequestField]);
}
