/**
 * POST /v1/encode: lmdeploy's tokenize endpoint (`input`, `do_preprocess`, `add_bos`).
 * @module
 */
import { z } from 'zod';
import type { PromptInput } from '../../runtime/types.js';

export const encodeRequestSchema = z.object({
  input: z.union([z.string(), z.array(z.string()).min(1, 'must contain at least one prompt')]),
  /** Apply the chat template to each prompt, as one user message. */
  do_preprocess: z.boolean().nullish(),
  /** Prepend the tokenizer's BOS (lmdeploy's default: true). */
  add_bos: z.boolean().nullish(),
  model: z.string().nullish(),
});

export type EncodeBody = z.output<typeof encodeRequestSchema>;

/** One prompt -> what the runtime tokenizes: a templated user message, or the text with or without BOS. */
export function toPromptInput(prompt: string, body: EncodeBody): PromptInput {
  if (body.do_preprocess) return { kind: 'messages', messages: [{ role: 'user', content: prompt }] };
  return { kind: 'text', text: prompt, addSpecialTokens: body.add_bos ?? true };
}
