/**
 * The tokenizer of a GGUF file (its `tokenizer.*` metadata) as the files the rest of edgellm already
 * loads: a Hugging Face tokenizers `tokenizer.json`, a transformers-style `tokenizer_config.json`
 * (with the Jinja chat template) and a `generation_config.json`. Feed them to
 * src/model/hf-tokenizer.ts' createHfTokenizer.
 *
 * - `gpt2`: byte-level BPE. GGUF keeps tokens and merges in their byte-level form; the pre-tokenizer
 *   regexes are llama.cpp's for the file's `tokenizer.ggml.pre`.
 * - `llama`: SentencePiece BPE with byte fallback. GGUF keeps no merges, only scores: the merges are
 *   derived from the scores as transformers' SentencePiece converter does.
 * @module
 */
import { GgufError, metaOptionalNumber, metaString, type GgufFile, type GgufValue } from './reader.js';

type Json = Record<string, unknown>;

export interface GgufTokenizerFiles {
  tokenizerJson: Json;
  tokenizerConfig: Json;
  generationConfig: Json;
}

/** llama.cpp `llama_token_type`. */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** GPT-2's split (llama.cpp and HF ByteLevel's `use_regex`). */
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Mistral's tekken (Mistral Nemo), as its tokenizer.json spells it: words split at case changes. */
const TEKKEN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** o200k (gpt-4o, Llama 4): tekken's case split plus contractions, numbers in threes. */
const CONTRACTION = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?";
const GPT4O =
  `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${CONTRACTION}|` +
  `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${CONTRACTION}|` +
  "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * `tokenizer.ggml.pre` -> the regexes llama.cpp splits text with, applied in turn (each splits the
 * pieces of the one before). Names as llama.cpp's llama-vocab.cpp spells them.
 */
const PRE_TOKENIZERS: Record<string, string[]> = {
  default: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
  gpt2: [GPT2],
  'gpt-2': [GPT2],
  mpt: [GPT2],
  olmo: [GPT2],
  'phi-2': [GPT2],
  'llama-bpe': [LLAMA3],
  llama3: [LLAMA3],
  'llama-v3': [LLAMA3],
  pixtral: [LLAMA3],
  dbrx: [LLAMA3],
  'smaug-bpe': [LLAMA3],
  falcon3: [LLAMA3],
  smollm: ['\\p{N}', GPT2],
  starcoder: ['\\p{N}', GPT2],
  refact: ['\\p{N}', GPT2],
  'command-r': ['\\p{N}', GPT2],
  codeshell: ['\\p{N}', GPT2],
  qwen2: [QWEN2],
  'qwen2.5': [QWEN2],
  'deepseek-r1-qwen': [QWEN2],
  stablelm2: [QWEN2],
  megrez: [QWEN2],
  'chatglm-bpe': [LLAMA3],
  tekken: [TEKKEN],
  'gpt-4o': [GPT4O],
  llama4: [GPT4O],
};

/**
 * llama.cpp's defaults for Llama 3-style (tiktoken) vocabs: a word that is a whole token is taken as
 * it is, before any merge (HF `ignore_merges`), and BOS is added unless the file says otherwise.
 */
const WHOLE_WORD_PRE = new Set(['llama-bpe', 'llama3', 'llama-v3', 'falcon3', 'pixtral', 'tekken']);

/** The `tokenizer.ggml.pre` values this importer understands. */
export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TOKENIZERS);

const list = (file: Pick<GgufFile, 'metadata'>, key: string): GgufValue[] | undefined => {
  const v = file.metadata[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new GgufError(`GGUF metadata ${key} is not an array`);
  return v;
};

const bool = (file: Pick<GgufFile, 'metadata'>, key: string, fallback: boolean): boolean => {
  const v = file.metadata[key];
  return typeof v === 'boolean' ? v : fallback;
};

/** The token strings; empty ones get llama.cpp's placeholder `[EMPTY_i]` (a vocab key must be unique and non-empty). */
function tokensOf(file: Pick<GgufFile, 'metadata'>): string[] {
  const tokens = list(file, 'tokenizer.ggml.tokens');
  if (!tokens) throw new GgufError('GGUF metadata tokenizer.ggml.tokens is missing: the file has no tokenizer');
  return tokens.map((t, i) => (typeof t === 'string' && t !== '' ? t : `[EMPTY_${i}]`));
}

function vocabOf(tokens: string[]): Record<string, number> {
  const vocab: Record<string, number> = Object.create(null);
  // Duplicate strings: the first id wins (a vocab maps each string to one id).
  tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  return vocab;
}

/**
 * Merges for a SentencePiece BPE vocab from its scores, as transformers' `generate_merges` does:
 * every split of every piece into two pieces of the vocab, ordered by the merged piece's score
 * (highest first), then the longer left and right parts, then vocab order.
 */
export function mergesFromScores(tokens: readonly string[], scores: ArrayLike<number>): [string, string][] {
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!vocab.has(t)) vocab.set(t, i);
  });
  const merges: { l: string; r: string; score: number; ll: number; rl: number; order: number }[] = [];
  let order = 0;
  for (const [piece, id] of vocab) {
    const chars = Array.from(piece);
    if (chars.length < 2) continue;
    const local: { l: string; r: string; li: number; ri: number; ll: number; rl: number }[] = [];
    let left = '';
    for (let k = 1; k < chars.length; k++) {
      left += chars[k - 1];
      const right = piece.slice(left.length);
      const li = vocab.get(left), ri = vocab.get(right);
      if (li !== undefined && ri !== undefined) local.push({ l: left, r: right, li, ri, ll: k, rl: chars.length - k });
    }
    local.sort((a, b) => a.li - b.li || a.ri - b.ri);
    for (const m of local) merges.push({ l: m.l, r: m.r, score: scores[id] ?? 0, ll: m.ll, rl: m.rl, order: order++ });
  }
  merges.sort((a, b) => b.score - a.score || b.ll - a.ll || b.rl - a.rl || a.order - b.order);
  return merges.map((m) => [m.l, m.r]);
}

interface Specials {
  bos?: number;
  eos?: number;
  eot?: number;
  unk?: number;
  pad?: number;
}

function specialIds(file: Pick<GgufFile, 'metadata'>, count: number): Specials {
  const id = (key: string) => {
    const v = metaOptionalNumber(file, `tokenizer.ggml.${key}`);
    return v !== undefined && v >= 0 && v < count ? v : undefined;
  };
  return { bos: id('bos_token_id'), eos: id('eos_token_id'), eot: id('eot_token_id'), unk: id('unknown_token_id'), pad: id('padding_token_id') };
}

/** Added tokens: control, unknown and the named special tokens as special; user-defined ones as plain added tokens. */
function addedTokens(tokens: string[], types: GgufValue[] | undefined, specials: Specials) {
  const named = new Set(Object.values(specials).filter((v): v is number => v !== undefined));
  const out: Json[] = [];
  tokens.forEach((content, id) => {
    const type = types?.[id];
    const special = type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.UNKNOWN || named.has(id);
    if (!special && type !== TOKEN_TYPE.USER_DEFINED) return;
    out.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  });
  return out;
}

function postProcessor(tokens: string[], specials: Specials, addBos: boolean, addEos: boolean, fallback: Json | null): Json | null {
  const bos = addBos && specials.bos !== undefined ? tokens[specials.bos] : undefined;
  const eos = addEos && specials.eos !== undefined ? tokens[specials.eos] : undefined;
  if (bos === undefined && eos === undefined) return fallback;
  const seq = (id: 'A' | 'B', typeId: number) => [
    ...(bos !== undefined ? [{ SpecialToken: { id: bos, type_id: typeId } }] : []),
    { Sequence: { id, type_id: typeId } },
    ...(eos !== undefined ? [{ SpecialToken: { id: eos, type_id: typeId } }] : []),
  ];
  const special_tokens: Json = {};
  if (bos !== undefined) special_tokens[bos] = { id: bos, ids: [specials.bos], tokens: [bos] };
  if (eos !== undefined) special_tokens[eos] = { id: eos, ids: [specials.eos], tokens: [eos] };
  return { type: 'TemplateProcessing', single: seq('A', 0), pair: [...seq('A', 0), ...seq('B', 1)], special_tokens };
}

function bpeModel(vocab: Json, merges: [string, string][], extra: Json): Json {
  return {
    type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: false, byte_fallback: false, ignore_merges: false, ...extra, vocab, merges,
  };
}

/** Token texts llama.cpp always treats as end of generation when the vocab has them (llama-vocab.cpp). */
const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|eom_id|>', '<EOT>', '_<EOT>',
  '<｜end▁of▁sentence｜>', '<|end_of_text|>', '<end_of_utterance>',
]);

/**
 * The ids that end generation, as llama.cpp collects them: eos, eot and eom from the metadata, then
 * the tokens whose text is a known end-of-turn marker (ChatML's <|im_end|>, Llama 3's <|eot_id|>,
 * Gemma's <end_of_turn>...). eos comes first.
 */
export function eogTokenIds(file: Pick<GgufFile, 'metadata'>): number[] {
  const tokens = list(file, 'tokenizer.ggml.tokens');
  // Without a vocab (a file of weights alone) the ids cannot be checked against it.
  const count = tokens?.length ?? Infinity;
  const specials = specialIds(file, count);
  const eom = metaOptionalNumber(file, 'tokenizer.ggml.eom_token_id');
  const ids = [specials.eos, specials.eot, eom !== undefined && eom < count ? eom : undefined];
  tokens?.forEach((t, i) => {
    if (typeof t === 'string' && EOG_TEXTS.has(t)) ids.push(i);
  });
  return [...new Set(ids.filter((v): v is number => v !== undefined))];
}

/** Builds tokenizer.json, tokenizer_config.json and generation_config.json from a GGUF file's metadata. */
export function ggufTokenizerFiles(file: Pick<GgufFile, 'metadata'>): GgufTokenizerFiles {
  const model = metaString(file, 'tokenizer.ggml.model');
  if (model !== 'gpt2' && model !== 'llama') {
    throw new GgufError(`GGUF tokenizer.ggml.model ${model === undefined ? '(missing)' : `'${model}'`} is not supported (gpt2 and llama are)`);
  }
  const tokens = tokensOf(file);
  const types = list(file, 'tokenizer.ggml.token_type');
  const specials = specialIds(file, tokens.length);
  const vocab = vocabOf(tokens);
  const added = addedTokens(tokens, types, specials);
  let tokenizerJson: Json;
  let addBos: boolean;
  const addEos = bool(file, 'tokenizer.ggml.add_eos_token', false);

  if (model === 'gpt2') {
    const pre = metaString(file, 'tokenizer.ggml.pre') ?? 'default';
    const regexes = PRE_TOKENIZERS[pre];
    if (!regexes) {
      throw new GgufError(
        `GGUF tokenizer.ggml.pre '${pre}' is not supported (supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')})`,
      );
    }
    const rawMerges = list(file, 'tokenizer.ggml.merges');
    if (!rawMerges) throw new GgufError('GGUF metadata tokenizer.ggml.merges is missing (a gpt2 tokenizer needs its merges)');
    // llama.cpp splits a merge at the first space after its first character.
    const merges = rawMerges.map((m): [string, string] => {
      const s = String(m);
      const at = s.indexOf(' ', 1);
      if (at < 0) throw new GgufError(`GGUF tokenizer.ggml.merges entry '${s}' has no space`);
      return [s.slice(0, at), s.slice(at + 1)];
    });
    const wholeWords = WHOLE_WORD_PRE.has(pre);
    addBos = bool(file, 'tokenizer.ggml.add_bos_token', wholeWords);
    tokenizerJson = {
      version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          ...regexes.map((Regex) => ({ type: 'Split', pattern: { Regex }, behavior: 'Isolated', invert: false })),
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: postProcessor(tokens, specials, addBos, addEos, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }),
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: bpeModel(vocab, merges, { ignore_merges: wholeWords }),
    };
  } else {
    const scores = list(file, 'tokenizer.ggml.scores');
    if (!scores) throw new GgufError('GGUF metadata tokenizer.ggml.scores is missing (a llama tokenizer needs its scores)');
    const merges = mergesFromScores(tokens, scores as number[]);
    addBos = bool(file, 'tokenizer.ggml.add_bos_token', true);
    const spacePrefix = bool(file, 'tokenizer.ggml.add_space_prefix', true);
    const replace = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
    const unk = specials.unk !== undefined ? tokens[specials.unk] : tokens.find((_, i) => types?.[i] === TOKEN_TYPE.UNKNOWN);
    tokenizerJson = {
      version: '1.0', truncation: null, padding: null, added_tokens: added,
      normalizer: spacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replace] } : replace,
      pre_tokenizer: null,
      post_processor: postProcessor(tokens, specials, addBos, addEos, null),
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          ...(spacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
      model: bpeModel(vocab, merges, { unk_token: unk ?? null, fuse_unk: true, byte_fallback: true }),
    };
  }

  const name = (id: number | undefined) => (id === undefined ? undefined : tokens[id]);
  const template = metaString(file, 'tokenizer.chat_template');
  const arch = metaString(file, 'general.architecture');
  const contextLength = arch ? metaOptionalNumber(file, `${arch}.context_length`) : undefined;
  const tokenizerConfig: Json = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: addBos,
    add_eos_token: addEos,
    clean_up_tokenization_spaces: false,
    ...(model === 'llama' ? { legacy: true } : {}),
    ...(contextLength !== undefined ? { model_max_length: contextLength } : {}),
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
  };
  for (const [key, id] of [['bos_token', specials.bos], ['eos_token', specials.eos], ['unk_token', specials.unk], ['pad_token', specials.pad]] as const) {
    const token = name(id);
    if (token !== undefined) tokenizerConfig[key] = token;
  }
  if (template !== undefined) tokenizerConfig.chat_template = template;

  const eosIds = eogTokenIds(file);
  const generationConfig: Json = {};
  if (specials.bos !== undefined) generationConfig.bos_token_id = specials.bos;
  if (eosIds.length) generationConfig.eos_token_id = eosIds.length === 1 ? eosIds[0] : eosIds;
  if (specials.pad !== undefined) generationConfig.pad_token_id = specials.pad;
  return { tokenizerJson, tokenizerConfig, generationConfig };
}
