/**
 * Logprob tokens on real tokenizers: a backend that chooses a known token sequence, the engine and
 * the completions/chat wire formats. Token texts must spell the returned text, `text_offset` must
 * point into it, and `bytes` must be the token's own bytes, on SentencePiece (stories260K, the
 * Llama-2 tokenizer of tiny-random) and byte-level BPE (SmolLM2).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FakeBackend, collect, request, textOf } from '../../test/fixtures/fake-backend.js';
import { SHARED_MODELS, sharedModel, STORIES, TINY_RANDOM } from '../../test/helpers/shared-models.js';
import { appendCompletionLogprobs, emptyCompletionLogprobs, toChatLogprobs } from '../handlers/shared/logprobs-format.js';
import { createHfTokenizer } from '../model/hf-tokenizer.js';
import { createEngine } from './engine.js';
import type { TokenLogprob } from './types.js';

const SMOLLM = 'SmolLM2-135M-Instruct';
const TEXT = ' Hello, there was "café" — 日本語 🙂 and\nnew lines  with  spaces.';
const PROMPT = 'Once upon a time';

const tokenizers = new Map<string, ReturnType<typeof createHfTokenizer>>();

function tokenizerOf(name: string) {
  const known = tokenizers.get(name);
  if (known) return known;
  const dir = `${SHARED_MODELS.replace(/\/$/, '')}/${name}`;
  const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
  const config = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));
  const tokenizer = createHfTokenizer(json, config, []);
  tokenizers.set(name, tokenizer);
  return tokenizer;
}

/** Generates exactly `target` after the prompt (greedy, logprobs on) and returns the events. */
async function generateExactly(name: string, target: number[]) {
  const tokenizer = tokenizerOf(name);
  const vocabSize = tokenizer.tokenBytes!().length;
  const promptLength = tokenizer.encode(PROMPT, true).length;
  const backend = new FakeBackend({
    vocabSize,
    contextLength: 4096,
    logits: (history, size) => {
      const out = new Float32Array(size);
      out[target[history.length - promptLength]] = 5;
      return out;
    },
  });
  const engine = createEngine({ backend, tokenizer, modelNames: ['m'] });
  const events = await collect(() => engine.generate(request({ prompt: PROMPT, maxTokens: target.length, logprobs: 2 })));
  const entries = events.flatMap((e): TokenLogprob[] => (e.type === 'delta' ? (e.logprobs ?? []) : []));
  return { tokenizer, text: textOf(events), entries };
}

const cases = [
  { name: STORIES, kind: 'SentencePiece, byte fallback' },
  { name: TINY_RANDOM, kind: 'SentencePiece (Llama 2)' },
  { name: SMOLLM, kind: 'byte-level BPE' },
];

describe.each(cases)('logprob tokens on $name ($kind)', ({ name }) => {
  const present = sharedModel(name) !== undefined;

  it.skipIf(!present)('spell the returned text, with offsets into it and the tokens’ own bytes', async () => {
    const target = tokenizerOf(name).encode(TEXT, false);
    const { tokenizer, text, entries } = await generateExactly(name, target);
    expect(entries.map((e) => e.token)).toEqual(target);
    // The generated text is the target (SentencePiece's dummy prefix gives the leading space).
    expect(text).toBe(tokenizer.decode([...tokenizer.encode(PROMPT, false), ...target]).slice(tokenizer.decode(tokenizer.encode(PROMPT, false)).length));
    expect(entries.map((e) => e.text).join('')).toBe(text);

    const wire = emptyCompletionLogprobs();
    appendCompletionLogprobs(wire, entries, 0);
    wire.tokens.forEach((token, i) => expect(text.slice(wire.text_offset[i], wire.text_offset[i] + token.length)).toBe(token));
    expect(wire.text_offset[0]).toBe(0);

    // All bytes together are the text; each token that holds whole characters decodes to its text.
    const all = entries.flatMap((e) => e.bytes);
    expect(new TextDecoder().decode(new Uint8Array(all))).toBe(text);
    const chat = toChatLogprobs(entries);
    for (const [i, entry] of chat.entries()) {
      expect(entry.bytes).toEqual(entries[i].bytes);
      const strict = (() => {
        try {
          return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(entry.bytes));
        } catch {
          return undefined;
        }
      })();
      if (strict !== undefined) expect(entry.token).toBe(strict);
      for (const alt of entry.top_logprobs) expect(alt.token).toBe(new TextDecoder().decode(new Uint8Array(alt.bytes)));
    }
    // Some token of the sample is a piece of a character (emoji bytes), and comes out as '' or whole.
    expect(entries.some((e) => e.text === '' || e.text.includes('🙂'))).toBe(true);
  });

  it.skipIf(!present)('keeps the leading space of the first generated word', async () => {
    const tokenizer = tokenizerOf(name);
    const target = tokenizer.encode(' there was', false).slice(-2);
    const { entries, text } = await generateExactly(name, target);
    expect(entries.map((e) => e.text).join('')).toBe(text);
    expect(entries[0].text.startsWith(' ')).toBe(true);
  });
});
