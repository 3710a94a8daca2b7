/**
 * What the engine needs from a tokenizer. Both adapters use src/model/hf-tokenizer.ts (the tokenizer transformers.js is built on).
 * @module
 */
import type { ChatMessage } from './types.js';

export interface Tokenizer {
  /** Encodes text. `addSpecialTokens` adds BOS (and whatever the tokenizer adds) when true. */
  encode(text: string, addSpecialTokens: boolean): number[];
  /** Decodes ids to text; special tokens are skipped. */
  decode(ids: number[]): string;
  /**
   * Renders messages with the model's own chat template, ending with the assistant prompt; `tools`
   * (OpenAI's list shape) reach templates that take them.
   */
  applyChatTemplate?(messages: ChatMessage[], tools?: object[]): string;
  /** The model's own chat template source, when it has one (to see whether it takes tools). */
  readonly chatTemplate?: string;
  /**
   * The bytes each token id adds to the text (null for special tokens), computed once on first use:
   * for logprobs' `bytes` and for constrained decoding. See src/model/token-bytes.ts.
   */
  tokenBytes?(): (Uint8Array | null)[];
  /**
   * Encodes off the event loop (another thread), for long texts; same ids as `encode`. Optional:
   * without it long texts are encoded in place.
   */
  encodeAsync?(text: string, addSpecialTokens: boolean): Promise<number[]>;
  /**
   * The most characters one token of this vocabulary covers, so a text longer than
   * `context * maxTokenChars` can be refused without tokenizing it. Undefined: unknown.
   */
  readonly maxTokenChars?: number;
  readonly bosTokenId?: number;
  readonly eosTokenIds: number[];
}

const PROBE = '\n';

/**
 * Encodes text that continues a token sequence. SentencePiece tokenizers with a dummy prefix
 * (Llama 2 and others) read the start of any text as the start of a word, so " </s>" alone would
 * become "▁▁</s>" where the whole prompt has "▁</s>". Encoding after a probe line break and
 * dropping the probe's tokens avoids that; when the probe merges with the text (byte-level BPE
 * joins line breaks), the text is encoded on its own, which is right for those tokenizers.
 */
export function encodeContinuation(tokenizer: Tokenizer, text: string): number[] {
  if (text === '') return [];
  const probe = tokenizer.encode(PROBE, false);
  const both = tokenizer.encode(PROBE + text, false);
  const clean = probe.length > 0 && both.length > probe.length && probe.every((id, i) => both[i] === id);
  return clean ? both.slice(probe.length) : tokenizer.encode(text, false);
}
