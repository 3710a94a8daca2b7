import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedModel, STORIES, TINY_RANDOM } from '../../test/helpers/shared-models.js';
import { createHfTokenizer } from './hf-tokenizer.js';
import { tokenByteTable } from './token-bytes.js';

const TEXTS = [
  'Once upon a time, there was a little girl.',
  '  two leading spaces and\ttabs\n\nnew lines',
  'Ünïcödé, 中文, emoji 🦙🦙 and {"json": [1, 2.5e-3, null]}',
  'def f(x):\n    return x ** 2  # code',
];

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
};

describe.each([STORIES, TINY_RANDOM, 'SmolLM2-135M-Instruct'])('tokenByteTable on %s', (name) => {
  const dir = sharedModel(name);
  it.skipIf(!dir)("gives each token's bytes: after a prefix, their concatenation is exactly the text decode adds", () => {
    const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
    const tok = createHfTokenizer(json, JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')), []);
    const table = tokenByteTable(json);
    const prefix = tok.encode('Hello', false);
    for (const text of TEXTS) {
      const ids = tok.encode(text, false);
      const added = tok.decode([...prefix, ...ids]).slice(tok.decode(prefix).length);
      expect(new TextDecoder().decode(concat(ids.map((id) => table[id]!)))).toBe(added);
    }
    // Special tokens are not text.
    const specials = (json.added_tokens as Array<{ id: number; special: boolean }>).filter((t) => t.special);
    expect(specials.length).toBeGreaterThan(0);
    for (const t of specials) expect(table[t.id]).toBeNull();
  });
});

describe('tokenByteTable on hand-made tokenizers', () => {
  it('maps SentencePiece pieces: ▁ is a space, <0xNN> is one byte', () => {
    const table = tokenByteTable({
      model: { type: 'BPE', byte_fallback: true, vocab: { '<unk>': 0, '▁the': 1, '<0x0A>': 2, '<0xE4>': 3 } },
      decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }] },
      added_tokens: [{ id: 0, content: '<unk>', special: true }],
    });
    expect(table).toEqual([null, new TextEncoder().encode(' the'), Uint8Array.of(10), Uint8Array.of(0xe4)]);
  });

  it("maps byte-level pieces through GPT-2's byte table (Ġ is a space, Ċ a line break)", () => {
    const table = tokenByteTable({ model: { type: 'BPE', vocab: { 'Ġhi': 0, 'Ċ': 1, 'Ã©': 2 } }, decoder: { type: 'ByteLevel' }, added_tokens: [{ id: 3, content: '<tool>', special: false }] });
    expect(table).toEqual([new TextEncoder().encode(' hi'), Uint8Array.of(10), Uint8Array.of(0xc3, 0xa9), new TextEncoder().encode('<tool>')]);
  });

  it("takes a 262k-token vocabulary (Gemma 3's) without overflowing the stack", () => {
    const vocab: Record<string, number> = {};
    for (let id = 0; id < 262_144; id++) vocab[`t${id}`] = id;
    const table = tokenByteTable({ model: { type: 'BPE', vocab }, added_tokens: [{ id: 262_144, content: '<image_soft_token>', special: true }] });
    expect(table).toHaveLength(262_145);
    expect(table[262_143]).toEqual(new TextEncoder().encode('t262143'));
    expect(table[262_144]).toBeNull();
  });
});
