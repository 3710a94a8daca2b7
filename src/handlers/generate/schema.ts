/**
 * POST /generate: lmdeploy's native API (`session_id`, `sequence_start`, `sequence_end`,
 * `request_output_len`, `ignore_eos`, `renew_session`), with lmdeploy's sampling defaults.
 * @module
 */
import { z } from 'zod';
import { invalidRequest } from '../../errors.js';
import type { GenerateRequest, SamplingParams } from '../../runtime/types.js';
import { samplingFields, toGenerationFields } from '../shared/sampling-schema.js';

const message = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });

export const generateRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(message).min(1)]),
  session_id: z.number().int().nullish(),
  sequence_start: z.boolean().nullish(),
  sequence_end: z.boolean().nullish(),
  renew_session: z.boolean().nullish(),
  interactive_mode: z.boolean().nullish(),
  request_output_len: z.number().int().min(0).nullish(),
  max_tokens: z.number().int().min(0).nullish(),
  // lmdeploy once used a boolean `stop` (cancel); strings are stop sequences as elsewhere.
  stop: z.union([z.string(), z.array(z.string()).max(32), z.boolean()]).nullish(),
  model: z.string().nullish(),
});

export type GenerateBody = z.output<typeof generateRequestSchema>;

// lmdeploy's api_server defaults; the model's generation_config.json overrides them.
const DEFAULTS: Partial<SamplingParams> = { temperature: 0.8, topP: 0.8, topK: 40 };

export function toGenerateRequest(body: GenerateBody, signal?: AbortSignal): GenerateRequest {
  if (body.stop === true) throw invalidRequest("'stop': true (cancel) is not supported; close the connection to cancel.", 'stop');
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
  };
}
