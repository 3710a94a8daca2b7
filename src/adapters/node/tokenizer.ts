/**
 * The engine's Tokenizer on transformers.js' AutoTokenizer (tokenizer.json + tokenizer_config.json,
 * including the Jinja chat_template).
 * @module
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import type { Tokenizer } from '../../runtime/tokenizer.js';
import type { ChatMessage } from '../../runtime/types.js';

export async function loadTokenizer(dir: string, eosTokenIds: number[]): Promise<Tokenizer> {
  // Model files are resolved (and downloaded) by model-files.ts; transformers.js only reads them.
  env.allowRemoteModels = false;
  const tok = await AutoTokenizer.from_pretrained(dir);
  const eos = new Set(eosTokenIds);
  if (typeof tok.eos_token_id === 'number') eos.add(tok.eos_token_id);
  const hasTemplate = Boolean((tok as unknown as { chat_template?: unknown }).chat_template);
  return {
    encode: (text, addSpecialTokens) => tok.encode(text, { add_special_tokens: addSpecialTokens }),
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
    applyChatTemplate: hasTemplate
      ? (messages: ChatMessage[]) => tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true }) as string
      : undefined,
    bosTokenId: typeof tok.bos_token_id === 'number' ? tok.bos_token_id : undefined,
    eosTokenIds: [...eos],
  };
}
