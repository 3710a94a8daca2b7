/**
 * POST /v1/embeddings request schema.
 * @module
 */
import { z } from 'zod';
import type { EmbedRequest } from '../../runtime/types.js';

const tokenIds = z.array(z.number().int().min(0)).min(1);

export const embeddingRequestSchema = z.object({
  model: z.string().nullish(),
  input: z.union([z.string(), z.array(z.string()).min(1).max(2048), tokenIds, z.array(tokenIds).min(1).max(2048)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().nullish(),
});

export type EmbeddingRequest = z.output<typeof embeddingRequestSchema>;

export function toEmbedRequest(body: EmbeddingRequest, signal?: AbortSignal): EmbedRequest {
  const input = body.input;
  const items: Array<string | number[]> =
    typeof input === 'string' ? [input] : typeof input[0] === 'number' ? [input as number[]] : (input as Array<string | number[]>);
  return { model: body.model ?? undefined, input: items, signal };
}
