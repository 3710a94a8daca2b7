/**
 * POST /v1/completions request schema and its mapping to engine requests.
 * @module
 */
import { z } from 'zod';
import { invalidRequest } from '../../errors.js';
import type { GenerateRequest, SamplingParams } from '../../runtime/types.js';
import { rejectUnsupported, samplingFields, toGenerationFields } from '../shared/sampling-schema.js';

const tokenIds = z.array(z.number().int().min(0)).min(1);

/** Most prompts in one completions request. */
export const MAX_PROMPTS = 64;

export const completionRequestSchema = z.object({
  model: z.string().nullish(),
  // A list of prompts is a batch; each prompt's n sequences count against the queue.
  prompt: z.union([z.string(), z.array(z.string()).min(1).max(MAX_PROMPTS), tokenIds, z.array(tokenIds).min(1).max(MAX_PROMPTS)]),
  max_tokens: z.number().int().min(0).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  best_of: z.number().int().min(1).max(16).nullish(),
  logprobs: z.number().int().min(0).max(20).nullish(),
  ...samplingFields,
});

export type CompletionRequest = z.output<typeof completionRequestSchema>;

// OpenAI's defaults for this endpoint; the model's generation_config.json overrides them.
const DEFAULTS: Partial<SamplingParams> = { temperature: 1, topP: 1 };

export function checkCompletionRequest(body: CompletionRequest): void {
  const bestOf = body.best_of ?? body.n ?? 1;
  if (bestOf < (body.n ?? 1)) throw invalidRequest('best_of must be at least n.', 'best_of');
  if (bestOf > (body.n ?? 1) && body.stream) throw invalidRequest('best_of cannot be combined with stream.', 'best_of');
  if (bestOf > (body.n ?? 1) && (body.num_beams ?? 1) > 1) throw invalidRequest('best_of cannot be combined with num_beams.', 'best_of');
  rejectUnsupported(body, {
    suffix: (v) => v !== '',
    // Prompt logprobs (echo with logprobs) are not computed.
    echo: (v) => v === true && body.logprobs !== undefined && body.logprobs !== null,
  });
}

/** One engine request per prompt (a list of prompts gives n choices each). */
export function toGenerateRequests(body: CompletionRequest, signal?: AbortSignal): GenerateRequest[] {
  const p = body.prompt;
  const prompts: GenerateRequest['input'][] =
    typeof p === 'string'
      ? [{ kind: 'text', text: p }]
      : typeof p[0] === 'number'
        ? [{ kind: 'tokens', tokens: p as number[] }]
        : (p as Array<string | number[]>).map((x) =>
            typeof x === 'string' ? { kind: 'text', text: x } : { kind: 'tokens', tokens: x },
          );
  return prompts.map((input) => ({
    ...toGenerationFields(body, DEFAULTS, signal),
    input,
    template: 'completion',
    maxTokens: body.max_tokens ?? undefined,
    // best_of candidates are ranked by their tokens' logprobs, so those are computed even when not returned.
    n: body.best_of ?? body.n ?? 1,
    logprobs: body.logprobs ?? ((body.best_of ?? 1) > (body.n ?? 1) ? 0 : undefined),
  }));
}
