/**
 * The engine's Tokenizer from a model's parsed tokenizer.json and tokenizer_config.json, on the
 * pure-JS libraries that transformers.js itself uses (@huggingface/tokenizers, @huggingface/jinja).
 * No file system, no onnxruntime: it runs in workerd and browsers, and gives the same ids and the
 * same rendered chat template as transformers.js' AutoTokenizer (tested against it).
 * @module
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { Tokenizer } from '../runtime/tokenizer.js';
import { templateMessages } from '../runtime/tools/tool-prompt.js';
import type { ChatMessage } from '../runtime/types.js';
import { tokenByteTable } from './token-bytes.js';

type Config = Record<string, unknown>;

/** The special-token names transformers.js exposes to chat templates. */
const TEMPLATE_TOKENS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/** A config token is a string or an AddedToken object (`{content: ...}`). */
export function configToken(config: Config, key: string): string | undefined {
  const value = config[key];
  if (typeof value === 'string' && value) return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

/** The chat template string: a plain string, or the `default` entry of a list of named templates. */
export function chatTemplateOf(config: Config): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t || undefined;
  if (Array.isArray(t)) return t.find((entry) => entry?.name === 'default')?.template;
  return undefined;
}

export function createHfTokenizer(tokenizerJson: object, tokenizerConfig: Config, eosTokenIds: number[]): Tokenizer {
  const tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
  const idOf = (key: string) => {
    const token = configToken(tokenizerConfig, key);
    return token === undefined ? undefined : tok.token_to_id(token);
  };
  const eos = new Set(eosTokenIds);
  const eosId = idOf('eos_token');
  if (eosId !== undefined) eos.add(eosId);
  const source = chatTemplateOf(tokenizerConfig);
  const template = source === undefined ? undefined : new Template(source);
  const specialTokens = Object.fromEntries(
    TEMPLATE_TOKENS.map((key) => [key, configToken(tokenizerConfig, key)]).filter(([, value]) => value !== undefined),
  );
  let byteTable: (Uint8Array | null)[] | undefined;
  return {
    tokenBytes: () => (byteTable ??= tokenByteTable(tokenizerJson)),
    maxTokenChars: maxTokenChars(tokenizerJson),
    encode: (text, addSpecialTokens) => tok.encode(text, { add_special_tokens: addSpecialTokens }).ids,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
    applyChatTemplate: template
      ? (messages: ChatMessage[], tools?: object[]) =>
          template.render({ messages: templateMessages(messages), add_generation_prompt: true, tools: tools ?? null, documents: null, ...specialTokens })
      : undefined,
    chatTemplate: source,
    bosTokenId: idOf('bos_token'),
    eosTokenIds: [...eos],
  };
}

/**
 * The longest token string of the vocabulary (and added tokens), in UTF-16 units: no token covers
 * more input than that (a byte-level or byte-fallback token covers less than its length), so a
 * text longer than `context * maxTokenChars` cannot fit in the context. Undefined when the
 * vocabulary is not in a known shape, or its pre-tokenizer may drop characters (WordPiece's
 * whitespace split), which would break the bound.
 */
export function maxTokenChars(tokenizerJson: object): number | undefined {
  const json = tokenizerJson as { model?: { type?: string; vocab?: unknown }; added_tokens?: Array<{ content?: unknown }> };
  const vocab = json.model?.vocab;
  if (json.model?.type === 'WordPiece' || !vocab || typeof vocab !== 'object') return undefined;
  let max = 0;
  const pieces = Array.isArray(vocab) ? vocab.map((entry) => (Array.isArray(entry) ? entry[0] : entry)) : Object.keys(vocab);
  for (const piece of pieces) if (typeof piece === 'string' && piece.length > max) max = piece.length;
  for (const added of json.added_tokens ?? []) if (typeof added.content === 'string' && added.content.length > max) max = added.content.length;
  return max > 0 ? max : undefined;
}
