/**
 * POST /generate: lmdeploy's native API (`session_id`, `sequence_start`, `sequence_end`,
 * `request_output_len`, `ignore_eos`, `renew_session`), with lmdeploy's sampling defaults.
 * @module
 */
import { z } from 'zod';
import { invalidRequest } from '../../errors.js';
import type { GenerateRequest, SamplingParams } from '../../runtime/types.js';
import { constraintFields, toConstraint } from '../shared/constraint-fields.js';
import { samplingFields, toGenerationFields } from '../shared/sampling-schema.js';

const message = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });

export const generateRequestSchema = z.object({
  ...constraintFields,
  ...samplingFields,
  prompt: z.union([z.string(), z.array(message).min(1)]),
  session_id: z.number().int().nullish(),
  sequence_start: z.boolean().nullish(),
  sequence_end: z.boolean().nullish(),
  renew_session: z.boolean().nullish(),
  interactive_mode: z.boolean().nullish(),
  // lmdeploy 0.2's cancel of a running session; only false (its default) is accepted.
  cancel: z.boolean().nullish(),
  request_output_len: z.number().int().min(0).nullish(),
  max_tokens: z.number().int().min(0).nullish(),
  // lmdeploy once used a boolean `stop` (cancel); strings are stop sequences as elsewhere.
  stop: z.union([z.string(), z.array(z.string()).max(32), z.boolean()]).nullish(),
  model: z.string().nullish(),
});

export type GenerateBody = z.output<typeof generateRequestSchema>;

// lmdeploy's api_server defaults; the model's generation_config.json overrides them.
const DEFAULTS: Partial<SamplingParams> = { temperature: 0.8, topP: 0.8, topK: 40 };

/**
 * The `X-Session-Id` header names the session as `session_id` does, so a balancer can route on
 * it without reading the body: it fills a missing `session_id`, and must agree with a given one.
 */
export function withSessionHeader(body: GenerateBody, header: string | null): GenerateBody {
  if (header === null) return body;
  const value = header.trim();
  if (!/^-?\d{1,15}$/.test(value)) {
    throw invalidRequest(`The X-Session-Id header must be an integer, as session_id is; got '${value.slice(0, 40)}'.`, 'session_id');
  }
  const id = Number(value);
  if (body.session_id !== undefined && body.session_id !== null && body.session_id !== id) {
    throw invalidRequest(`The X-Session-Id header (${id}) and session_id (${body.session_id}) name different sessions.`, 'session_id');
  }
  return { ...body, session_id: id };
}

export function toGenerateRequest(body: GenerateBody, signal?: AbortSignal): GenerateRequest {
  if (body.stop === true) throw invalidRequest("'stop': true (cancel) is not supported; close the connection to cancel.", 'stop');
  if (body.cancel === true) throw invalidRequest("'cancel': true is not supported; close the connection to cancel.", 'cancel');
  const sessionId = body.session_id ?? -1;
  // session_id -1 (lmdeploy's default) is a one-off request with no kept history.
  const session =
    sessionId < 0
      ? undefined
      : {
          id: String(sessionId),
          start: (body.sequence_start ?? true) || body.renew_session === true,
          end: body.sequence_end ?? false,
        };
  return {
    ...toGenerationFields({ ...body, stop: typeof body.stop === 'boolean' ? undefined : body.stop, n: 1 }, DEFAULTS, signal),
    input: typeof body.prompt === 'string'
      ? session ? { kind: 'text', text: body.prompt } : { kind: 'messages', messages: [{ role: 'user', content: body.prompt }] }
      : { kind: 'messages', messages: body.prompt },
    // Unset: as much as the context leaves, with or without a session.
    maxTokens: body.request_output_len ?? body.max_tokens ?? undefined,
    session,
    constraint: toConstraint(body),
  };
}

/**
 * POST /v1/chat/interactive (lmdeploy 0.2's interactive chat): `/generate` whose session controls
 * are lmdeploy's `interactive_mode`. With a session id, the call continues the session's history
 * (or starts it); `interactive_mode: false` (the default) ends the session after the call, as
 * lmdeploy's `sequence_end = not interactive_mode`, so its `end_session` (an empty prompt with
 * `request_output_len: 0`) frees it. `renew_session` or `sequence_start: true` start afresh.
 */
export function toInteractiveRequest(body: GenerateBody, signal?: AbortSignal): GenerateRequest {
  const request = toGenerateRequest(
    {
      ...body,
      sequence_start: body.sequence_start ?? false,
      sequence_end: body.sequence_end ?? !body.interactive_mode,
    },
    signal,
  );
  return request.session ? { ...request, session: { ...request.session, startIfMissing: true } } : request;
}
