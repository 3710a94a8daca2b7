import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedModel, STORIES, TINY_RANDOM } from '../../test/helpers/shared-models.js';
import { typed, writeGguf, type WriterValue } from '../../test/helpers/gguf-writer.js';
import { createHfTokenizer } from '../model/hf-tokenizer.js';
import { byteLevelSymbols } from '../model/token-bytes.js';
import { readGguf, readGgufHeader } from './reader.js';
import { eogTokenIds, ggufTokenizerFiles, mergesFromScores, SUPPORTED_PRE_TOKENIZERS, TOKEN_TYPE } from './tokenizer.js';

const SMOL = 'SmolLM2-135M-Instruct';

/** English, code, Chinese, emoji, odd spacing, numbers, contractions and the ChatML special tokens. */
const TEXTS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  "  leading spaces, trailing spaces   and   runs of them  ",
  "I'm sure they'll say it's fine, we've seen THEY'RE and I'D.",
  'def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n',
  'const x = {a: [1, 2, 3], "b": null}; // comment\n\tindented\r\nwindows line',
  '1234567890 3.14159 1,000,000 2024-01-01',
  '中文测试：你好，世界！日本語のテキスト 한국어',
  'emoji 🦙🤗👍🏽 and ZWJ 👨‍👩‍👧‍👦 sequences',
  'Ünïcödé àccénts — “quotes” … ∑ ≤ ©',
  '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n',
  '<|endoftext|>text after<|im_end|><|im_start|>',
  '\n\n\n   \t  \n',
  '',
];

const CHAT_PROMPTS = ['What is the capital of France?', 'Write a Python function that returns the factorial of n.'];

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('ggufTokenizerFiles on the real SmolLM2 GGUF (gpt2, pre smollm)', () => {
  const dir = sharedModel(SMOL);
  let files: ReturnType<typeof ggufTokenizerFiles> | undefined;
  const load = () => {
    // The header alone holds the tokenizer: no need to touch the tensors.
    files ??= ggufTokenizerFiles(readGgufHeader(new Uint8Array(readFileSync(`${dir}/SmolLM2-135M-Instruct.Q4_1.gguf`))));
    return files;
  };

  it.skipIf(!dir)('gives the same ids as the shipped tokenizer.json on a broad set of strings', () => {
    const files = load();
    const ours = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    const shipped = createHfTokenizer(json(`${dir}/tokenizer.json`), json(`${dir}/tokenizer_config.json`), []);
    for (const text of TEXTS) {
      for (const special of [true, false]) {
        const ids = ours.encode(text, special);
        expect(ids, JSON.stringify(text)).toEqual(shipped.encode(text, special));
        if (ids.length) expect(ours.decode(ids)).toBe(shipped.decode(ids));
      }
    }
    expect(ours.encode('<|im_start|>', false)).toEqual([1]);
    expect(ours.bosTokenId).toBe(1);
    // <|im_end|> is eos; llama.cpp also ends generation on <|endoftext|>.
    expect(files.generationConfig).toEqual({ bos_token_id: 1, eos_token_id: [2, 0], pad_token_id: 2 });
    expect(files.tokenizerConfig).toMatchObject({ add_bos_token: false, bos_token: '<|im_start|>', eos_token: '<|im_end|>', model_max_length: 8192 });
  });

  it.skipIf(!dir)('splits every numeral alone as llama.cpp does, where @huggingface/tokenizers splits ASCII digits only', () => {
    // llama.cpp's smollm pre-tokenizer splits on \p{N} (as HF's Rust Digits does: char::is_numeric);
    // the JS library's Digits pre-tokenizer, which the shipped tokenizer.json uses, matches \d (ASCII).
    const files = load();
    const ours = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    const shipped = createHfTokenizer(json(`${dir}/tokenizer.json`), json(`${dir}/tokenizer_config.json`), []);
    const space = ours.encode(' ', false);
    expect(ours.encode(' ٣٤٥', false).slice(0, space.length)).toEqual(space);
    expect(shipped.encode(' ٣٤٥', false).slice(0, space.length)).not.toEqual(space);
    expect(ours.encode('٣٤٥', false)).toEqual(shipped.encode('٣٤٥', false));
  });

  it.skipIf(!dir)("renders the chat template to exactly llama.cpp's prompt ids (reference.json)", () => {
    const files = load();
    const tok = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    const reference = json(`${dir}/reference.json`);
    let checked = 0;
    for (const chat of reference.chat) {
      const text = tok.applyChatTemplate!([{ role: 'user', content: chat.prompt }]);
      expect(text).toBe(chat.templated);
      expect(tok.encode(text, false)).toEqual(chat.prompt_ids);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(CHAT_PROMPTS.length);
    for (const raw of reference.raw) expect(tok.encode(raw.prompt, false), raw.prompt).toEqual(raw.prompt_ids);
  });
});

/** A GGUF file holding only a tokenizer. */
function tokenizerGguf(meta: Record<string, WriterValue>) {
  return readGguf(writeGguf({ 'general.architecture': 'llama', ...meta }, []));
}

/** A tiny SentencePiece GGUF from an HF tokenizer.json: scores from the merge ranks (tokenizer.json keeps no scores). */
function spmGgufFrom(tokenizerJson: any, extra: Record<string, WriterValue> = {}) {
  const vocab: Record<string, number> = tokenizerJson.model.vocab;
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(vocab)) tokens[id] = t;
  const merges: string[] = tokenizerJson.model.merges.map((m: string | string[]) => (Array.isArray(m) ? m.join('') : m.replace(' ', '')));
  const rank = new Map<string, number>();
  merges.forEach((piece, i) => {
    if (!rank.has(piece)) rank.set(piece, i);
  });
  const special = new Set(tokenizerJson.added_tokens.map((t: { id: number }) => t.id));
  const scores = tokens.map((t, id) => (special.has(id) || /^<0x[0-9A-F]{2}>$/.test(t) ? 0 : -(rank.get(t) ?? 1e6 + id)));
  const types = tokens.map((t, id) =>
    id === 0 ? TOKEN_TYPE.UNKNOWN : special.has(id) ? TOKEN_TYPE.CONTROL : /^<0x[0-9A-F]{2}>$/.test(t) ? TOKEN_TYPE.BYTE : TOKEN_TYPE.NORMAL,
  );
  return tokenizerGguf({
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.scores': typed('ARRAY', scores, 'FLOAT32'),
    'tokenizer.ggml.token_type': typed('ARRAY', types, 'INT32'),
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
    'tokenizer.ggml.unknown_token_id': 0,
    ...extra,
  });
}

const SPM_TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  ' leading space and  double  spaces ',
  'Line one\nline two\n\n\ttabbed',
  'Ünïcödé, 中文, emoji 🦙 and <s> special </s> text',
  'numbers 12345 and symbols #@!',
  '',
];

describe.each([STORIES, TINY_RANDOM])('ggufTokenizerFiles for a llama (SentencePiece) GGUF built from %s', (name) => {
  const dir = sharedModel(name);
  it.skipIf(!dir)('gives the same ids as its tokenizer.json, with BOS and byte fallback', () => {
    const reference = json(`${dir}/tokenizer.json`);
    const files = ggufTokenizerFiles(spmGgufFrom(reference));
    const ours = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    const theirs = createHfTokenizer(reference, json(`${dir}/tokenizer_config.json`), []);
    for (const text of SPM_TEXTS) {
      for (const special of [true, false]) {
        const ids = ours.encode(text, special);
        expect(ids, `${JSON.stringify(text)} special=${special}`).toEqual(theirs.encode(text, special));
        if (ids.length) expect(ours.decode(ids)).toBe(theirs.decode(ids));
      }
    }
    expect(ours.encode('hi', true)[0]).toBe(1);
    if (name !== STORIES) return;
    // add_space_prefix false (Gemma): no ▁ before the text, so ' x' encodes as the prefixed 'x' did.
    const bare = ggufTokenizerFiles(spmGgufFrom(reference, { 'tokenizer.ggml.add_space_prefix': false, 'tokenizer.ggml.add_bos_token': false }));
    const noPrefix = createHfTokenizer(bare.tokenizerJson, bare.tokenizerConfig, []);
    expect(noPrefix.encode(' Once upon a time', true)).toEqual(theirs.encode('Once upon a time', false));
    expect(noPrefix.encode('Once', false)).not.toEqual(theirs.encode('Once', false));
    expect(noPrefix.decode(noPrefix.encode(' Once upon', false))).toBe(' Once upon');
    expect(files.tokenizerConfig).toMatchObject({ add_bos_token: true, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
  });
});

describe('ggufTokenizerFiles for a Gemma 3-style SentencePiece vocabulary', () => {
  it('keeps a token that starts with U+FEFF apart from the same text without it (Gemma 3 has "\\uFEFF#" and "#")', () => {
    // The BOM token comes first, as in Gemma 3 (208867 before 236865): a reader that drops the BOM gives "#" its id.
    const tokens = ['<pad>', '<eos>', '<bos>', '<unk>', '\uFEFF#', '#', 'a'];
    const file = readGguf(writeGguf({
      'general.architecture': 'gemma3',
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.tokens': tokens,
      'tokenizer.ggml.scores': typed('ARRAY', tokens.map((_, id) => -id), 'FLOAT32'),
      'tokenizer.ggml.token_type': typed('ARRAY', tokens.map((_, id) => (id < 3 ? TOKEN_TYPE.CONTROL : id === 3 ? TOKEN_TYPE.UNKNOWN : TOKEN_TYPE.NORMAL)), 'INT32'),
      'tokenizer.ggml.bos_token_id': 2,
      'tokenizer.ggml.eos_token_id': 1,
      'tokenizer.ggml.unknown_token_id': 3,
      'tokenizer.ggml.padding_token_id': 0,
      'tokenizer.ggml.add_space_prefix': false,
    }, []));
    const files = ggufTokenizerFiles(file);
    const tokenizer = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    expect(tokenizer.encode('#', false)).toEqual([5]);
    expect(tokenizer.decode([4, 6])).toBe('\uFEFF#a');
    expect(tokenizer.encode('#', true)).toEqual([2, 5]);
  });
});

describe('mergesFromScores', () => {
  it("orders merges by the merged piece's score, then longer left part, then vocab order", () => {
    const tokens = ['a', 'b', 'c', 'ab', 'bc', 'abc', 'ü', 'üa'];
    const scores = [0, 0, 0, -1, -2, -1.5, 0, -0.5];
    expect(mergesFromScores(tokens, scores)).toEqual([
      ['ü', 'a'],
      ['a', 'b'],
      ['ab', 'c'],
      ['a', 'bc'],
      ['b', 'c'],
    ]);
  });
});

/** A byte-level vocab: the 256 byte symbols, then the merged pieces. */
function byteLevelGguf(pre: string | undefined, merges: string[], extra: Record<string, WriterValue> = {}) {
  const bytes = byteLevelSymbols();
  const tokens = ['<|end|>', ...bytes, ...merges.map((m) => m.replace(' ', ''))];
  return tokenizerGguf({
    'tokenizer.ggml.model': 'gpt2',
    ...(pre ? { 'tokenizer.ggml.pre': pre } : {}),
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': typed('ARRAY', tokens.map((_, i) => (i === 0 ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.NORMAL)), 'INT32'),
    'tokenizer.ggml.merges': merges,
    'tokenizer.ggml.eos_token_id': 0,
    ...extra,
  });
}

describe('ggufTokenizerFiles for gpt2 pre-tokenizers', () => {
  const merges = ['1 2', '12 3', 'Ġ 3', 'a b', "' s"];
  const pieces = (pre: string | undefined, text: string) => {
    const files = ggufTokenizerFiles(byteLevelGguf(pre, merges));
    const tok = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    const vocab = (files.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
    const byId = Object.fromEntries(Object.entries(vocab).map(([t, id]) => [id, t]));
    return tok.encode(text, false).map((id) => byId[id]);
  };

  it('splits digits as each pre-tokenizer does (gpt2: runs, llama-bpe: up to 3, qwen2 and smollm: single)', () => {
    expect(pieces('gpt2', '1234 ab')).toEqual(['123', '4', 'Ġ', 'ab']);
    expect(pieces('llama-bpe', '1234 ab')).toEqual(['123', '4', 'Ġ', 'ab']);
    expect(pieces('qwen2', '1234 ab')).toEqual(['1', '2', '3', '4', 'Ġ', 'ab']);
    expect(pieces('smollm', '1234 12')).toEqual(['1', '2', '3', '4', 'Ġ', '1', '2']);
    expect(pieces('gpt2', 'x 3')).toEqual(['x', 'Ġ3']);
    expect(pieces('llama-bpe', 'x 3')).toEqual(['x', 'Ġ', '3']);
    expect(pieces('gpt2', "it's")).toEqual(['i', 't', "'s"]);
    // llama.cpp's default splits punctuation off first (no pre in the file means default).
    expect(pieces(undefined, "it's")).toEqual(['i', 't', "'", 's']);
  });

  it('splits words at case changes for tekken and gpt-4o', () => {
    expect(pieces('tekken', 'HelloWorld')).toEqual(['H', 'e', 'l', 'l', 'o', 'W', 'o', 'r', 'l', 'd']);
    const split = (pre: string, text: string) => {
      const files = ggufTokenizerFiles(byteLevelGguf(pre, ['o W', 'H e', 'He l', 'Hel l', 'Hell o', 'W o', 'Wo r', 'Wor l', 'Worl d']));
      const tok = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
      const vocab = (files.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
      const byId = Object.fromEntries(Object.entries(vocab).map(([t, id]) => [id, t]));
      return tok.encode(text, false).map((id) => byId[id]);
    };
    // Without the case split, 'o W' would merge across the words.
    expect(split('tekken', 'HelloWorld')).toEqual(['Hello', 'World']);
    expect(split('gpt2', 'HelloWorld')).toEqual(['Hell', 'oW', 'o', 'r', 'l', 'd']);
    expect(split('gpt-4o', 'HelloWorld')).toEqual(['Hello', 'World']);
    expect(split('llama4', 'HelloWorld')).toEqual(['Hello', 'World']);
  });

  it('takes whole-word tokens before merging for Llama 3-style vocabs (ignore_merges), and adds BOS by default there', () => {
    // 'abc' is a token no merge makes: llama-bpe takes it whole, gpt2 merges 'a b' then stops.
    const file = byteLevelGguf('llama-bpe', ['a b']);
    const tokens = [...(file.metadata['tokenizer.ggml.tokens'] as string[]), 'abc'];
    const withWord = (pre: string) => {
      const meta = { ...file.metadata, 'tokenizer.ggml.pre': pre, 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.bos_token_id': 0 };
      const files = ggufTokenizerFiles({ metadata: meta });
      return createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    };
    expect(withWord('llama-bpe').encode('abc', false)).toEqual([tokens.length - 1]);
    expect(withWord('llama-bpe').encode('abc', true)).toEqual([0, tokens.length - 1]);
    expect(withWord('gpt2').encode('abc', false)).toEqual([257, 1 + 'c'.charCodeAt(0)]);
    expect(withWord('gpt2').encode('abc', true)).toEqual([257, 1 + 'c'.charCodeAt(0)]);
  });

  it('adds BOS when add_bos_token is set, and names eos/eot in the generation config', () => {
    const file = byteLevelGguf('llama-bpe', merges, {
      'tokenizer.ggml.add_bos_token': true,
      'tokenizer.ggml.bos_token_id': 1,
      'tokenizer.ggml.eot_token_id': 2,
    });
    const files = ggufTokenizerFiles(file);
    const tok = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    expect(tok.encode('ab', true)).toEqual([1, 260]);
    expect(tok.encode('ab', false)).toEqual([260]);
    expect(files.generationConfig).toEqual({ bos_token_id: 1, eos_token_id: [0, 2] });
  });

  it("ends generation where llama.cpp does: eos, eot, eom and known end-of-turn texts", () => {
    const file = byteLevelGguf('llama-bpe', merges);
    const tokens = [...(file.metadata['tokenizer.ggml.tokens'] as string[]), '<|eot_id|>', '<|eom_id|>', '<|start_header_id|>'];
    const meta = { ...file.metadata, 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.eos_token_id': tokens.length - 1 };
    expect(eogTokenIds({ metadata: meta })).toEqual([tokens.length - 1, 0, tokens.length - 3, tokens.length - 2]);
    expect(ggufTokenizerFiles({ metadata: meta }).generationConfig.eos_token_id).toEqual([tokens.length - 1, 0, tokens.length - 3, tokens.length - 2]);
  });

  it('refuses an unknown pre-tokenizer and tokenizer model by name', () => {
    expect(() => ggufTokenizerFiles(byteLevelGguf('bloom', merges))).toThrow(/tokenizer\.ggml\.pre 'bloom' is not supported \(supported: default, gpt2/);
    expect(SUPPORTED_PRE_TOKENIZERS).toEqual(expect.arrayContaining(['default', 'gpt2', 'llama-bpe', 'smollm', 'qwen2']));
    expect(() => ggufTokenizerFiles(tokenizerGguf({ 'tokenizer.ggml.model': 'bert', 'tokenizer.ggml.tokens': ['a'] }))).toThrow(
      /tokenizer\.ggml\.model 'bert' is not supported \(gpt2 and llama are\)/,
    );
    expect(() => ggufTokenizerFiles(tokenizerGguf({}))).toThrow(/tokenizer\.ggml\.model \(missing\)/);
  });

  it('keeps user-defined tokens as non-special added tokens, control tokens as special', () => {
    const file = byteLevelGguf('gpt2', merges);
    const tokens = [...(file.metadata['tokenizer.ggml.tokens'] as string[]), '<tool>'];
    const types = [...(file.metadata['tokenizer.ggml.token_type'] as number[]), TOKEN_TYPE.USER_DEFINED];
    const files = ggufTokenizerFiles({ metadata: { ...file.metadata, 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.token_type': types } });
    expect(files.tokenizerJson.added_tokens).toEqual([
      expect.objectContaining({ id: 0, content: '<|end|>', special: true }),
      expect.objectContaining({ id: tokens.length - 1, content: '<tool>', special: false }),
    ]);
    const tok = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, []);
    expect(tok.encode('x<tool>y', false)).toEqual([tok.encode('x', false)[0], tokens.length - 1, tok.encode('y', false)[0]]);
  });
});
