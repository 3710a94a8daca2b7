/**
 * Request fields shared by the generation endpoints (OpenAI, vLLM and Chinese-LLaMA-Alpaca names),
 * and the one mapping from them to engine sampling parameters.
 * @module
 */
import { z } from 'zod';
import { invalidRequest } from '../../errors.js';
import type { GenerateRequest, SamplingParams } from '../../runtime/types.js';

const stopField = z.union([z.string(), z.array(z.string()).max(32)]).nullish();

export const samplingFields = {
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).max(10).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z
    .record(z.string().regex(/^\d+$/, 'keys must be token ids'), z.number().min(-100).max(100))
    .refine((bias) => Object.keys(bias).length <= 1024, 'at most 1024 token ids')
    .nullish(),
  seed: z.number().int().nullish(),
  num_beams: z.number().int().min(1).max(16).nullish(),
  length_penalty: z.number().nullish(),
  stop: stopField,
  stop_token_ids: z.array(z.number().int().min(0)).max(256).nullish(),
  ignore_eos: z.boolean().nullish(),
  min_tokens: z.number().int().min(0).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  user: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
};

type SamplingFields = { [K in keyof typeof samplingFields]?: z.output<(typeof samplingFields)[K]> };

const opt = <T>(value: T | null | undefined): T | undefined => (value === null ? undefined : value);

/** Wire fields -> engine sampling parameters (undefined = not given by the client). */
export function toSamplingParams(body: Omit<SamplingFields, 'stop'>): Partial<SamplingParams> {
  const logitBias = body.logit_bias ? Object.fromEntries(Object.entries(body.logit_bias).map(([k, v]) => [Number(k), v])) : undefined;
  return {
    temperature: opt(body.temperature),
    topP: opt(body.top_p),
    // vLLM and lmdeploy use -1 (and 0) for "no top-k".
    topK: body.top_k === -1 ? 0 : opt(body.top_k),
    minP: opt(body.min_p),
    repetitionPenalty: opt(body.repetition_penalty),
    presencePenalty: opt(body.presence_penalty),
    frequencyPenalty: opt(body.frequency_penalty),
    logitBias,
    seed: opt(body.seed),
    numBeams: opt(body.num_beams),
    lengthPenalty: opt(body.length_penalty),
  };
}

/** The engine-request fields every generation endpoint maps the same way. */
export function toGenerationFields(
  body: SamplingFields & { model?: string | null },
  defaults: Partial<SamplingParams>,
  signal?: AbortSignal,
): Omit<GenerateRequest, 'input' | 'maxTokens'> {
  return {
    model: body.model ?? undefined,
    sampling: toSamplingParams(body),
    defaults,
    minTokens: body.min_tokens ?? undefined,
    stop: toStop(body.stop),
    stopTokenIds: body.stop_token_ids ?? undefined,
    ignoreEos: body.ignore_eos ?? false,
    n: body.n ?? 1,
    signal,
  };
}

export function toStop(stop: string | string[] | null | undefined): string[] {
  const list = stop === null || stop === undefined ? [] : typeof stop === 'string' ? [stop] : stop;
  return list.filter((s) => s.length > 0);
}

/** Fields that clients send and that edgellm does not implement yet: refuse them instead of ignoring them. */
export function rejectUnsupported(body: Record<string, unknown>, fields: Record<string, (value: unknown) => boolean>): void {
  for (const [field, isUsed] of Object.entries(fields)) {
    if (body[field] !== undefined && body[field] !== null && isUsed(body[field])) {
      throw invalidRequest(`'${field}' is not supported by this server yet.`, field, 'unsupported_parameter');
    }
  }
}
