/**
 * What the engine needs from a tokenizer. Both adapters use src/internal/hf-tokenizer.ts (the tokenizer transformers.js is built on).
 * @module
 */
import type { ChatMessage } from './types.js';

export interface Tokenizer {
  /** Encodes text. `addSpecialTokens` adds BOS (and whatever the tokenizer adds) when true. */
  encode(text: string, addSpecialTokens: boolean): number[];
  /** Decodes ids to text; special tokens are skipped. */
  decode(ids: number[]): string;
  /** Renders messages with the model's own chat template, ending with the assistant prompt. */
  applyChatTemplate?(messages: ChatMessage[]): string;
  readonly bosTokenId?: number;
  readonly eosTokenIds: number[];
}
