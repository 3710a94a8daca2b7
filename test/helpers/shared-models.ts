/**
 * Where the shared model fixtures live (../shared/models beside the repo, or EDGELLM_SHARED_MODELS).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SHARED_MODELS = process.env.EDGELLM_SHARED_MODELS ?? fileURLToPath(new URL('../../../shared/models/', import.meta.url));

export function sharedModel(name: string): string | undefined {
  const dir = `${SHARED_MODELS.replace(/\/$/, '')}/${name}`;
  if (existsSync(dir)) return dir;
  console.warn(`[edgellm tests] skipping: ${dir} not found (set EDGELLM_SHARED_MODELS to the shared models folder)`);
  return undefined;
}

export const STORIES = 'karpathy__stories260K';
export const TINY_RANDOM = 'hf-internal-testing__tiny-random-LlamaForCausalLM';
export const MODEL2VEC = 'MinishLab__model2vec-test-model-vocab-quantized';
/** A real chat model (Q4_1 GGUF, not loadable yet) with its tokenizer.json: byte-level BPE, 49,152 tokens. */
export const SMOLLM2 = 'SmolLM2-135M-Instruct';
