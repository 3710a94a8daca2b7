import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from './detokenizer.js';

type Decode = (ids: number[]) => string;

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits ids into chunks: sizes 1 when `maxChunk` is 1, else random in [0, maxChunk]. */
function chunks(ids: number[], maxChunk: number, rand: () => number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < ids.length; ) {
    const n = maxChunk === 1 ? 1 : Math.floor(rand() * (maxChunk + 1));
    out.push(ids.slice(i, i + n));
    i += n;
  }
  return out;
}

function stream(decode: Decode, context: number[], parts: number[][]): { pushes: string[]; text: string } {
  const d = new IncrementalDetokenizer(decode, context);
  const pushes = parts.map((p) => d.push(p));
  const text = pushes.join('') + d.flush();
  return { pushes, text };
}

/** What a non-streamed decode produces after the prompt context. */
const expected = (decode: Decode, context: number[], ids: number[]) =>
  decode([...context, ...ids]).slice(decode(context).length);

// Byte-level fake: every token is one UTF-8 byte; partial sequences decode to U+FFFD.
const byteDecode: Decode = (ids) => new TextDecoder().decode(Uint8Array.from(ids));
const bytes = (s: string) => [...new TextEncoder().encode(s)];

// SentencePiece-like fake: pieces with '▁' for space; one leading space stripped per decode.
const PIECES = ['▁Once', '▁upon', '▁a', '▁time', ',', '▁there', '▁was', '▁', 'x', '<s>'];
const spDecode: Decode = (ids) =>
  ids
    .filter((i) => PIECES[i] !== '<s>')
    .map((i) => PIECES[i])
    .join('')
    .replaceAll('▁', ' ')
    .replace(/^ /, '');

describe('IncrementalDetokenizer (fakes)', () => {
  const texts = ['Hello, world', '杭州的西湖很美', 'I love 🍕 and 🎉!', 'é€😀a'];

  it.each(texts)('byte-level: streamed text equals the full decode for any split (%s)', (s) => {
    const rand = rng(42);
    const ctx = bytes('prompt: ');
    for (const max of [1, 2, 3, 5, 100]) {
      for (let trial = 0; trial < 20; trial++) {
        const { pushes, text } = stream(byteDecode, ctx, chunks(bytes(s), max, rand));
        expect(text).toBe(s);
        for (const p of pushes) expect(p).not.toContain('\uFFFD');
      }
    }
  });

  it('holds back an incomplete sequence and releases it when complete', () => {
    const d = new IncrementalDetokenizer(byteDecode);
    const [a, b, c, e] = bytes('😀');
    expect(d.push([0x41, a])).toBe('A');
    expect(d.push([b])).toBe('');
    expect(d.push([c])).toBe('');
    expect(d.push([e])).toBe('😀');
    expect(d.flush()).toBe('');
  });

  it('a genuinely invalid sequence comes out as U+FFFD (mid-stream or at flush)', () => {
    const ids = [0xe6, 0x41, 0x80, 0x42, 0xe6, 0x9d];
    const { text } = stream(byteDecode, [], ids.map((i) => [i]));
    expect(text).toBe(byteDecode(ids));
    expect(text).toBe('\uFFFDA\uFFFDB\uFFFD');
    const d = new IncrementalDetokenizer(byteDecode);
    expect(d.push([0xe6, 0x9d])).toBe('');
    expect(d.flush()).toBe('\uFFFD');
    expect(d.flush()).toBe('');
  });

  it('byte-level: random (often invalid) bytes, random splits', () => {
    const rand = rng(3);
    for (let trial = 0; trial < 200; trial++) {
      const pool = bytes('a é€😀');
      const ids = Array.from({ length: 12 }, () => (rand() < 0.7 ? pool[Math.floor(rand() * pool.length)] : Math.floor(rand() * 256)));
      const ctx = trial % 2 ? [] : bytes('x');
      expect(stream(byteDecode, ctx, chunks(ids, 1 + (trial % 4), rand)).text).toBe(expected(byteDecode, ctx, ids));
    }
  });

  it('empty pushes and flush on an empty stream return ""', () => {
    const d = new IncrementalDetokenizer(byteDecode, bytes('ab'));
    expect(d.push([])).toBe('');
    expect(d.flush()).toBe('');
  });

  it('SentencePiece-like: context keeps the leading space of the first generated token', () => {
    const gen = [5, 6, 4, 7, 8, 7, 7, 3];
    expect(spDecode(gen)).toBe('there was, x   time'); // without context the space is lost
    for (const context of [[0, 1, 2, 3], [3], [9]]) {
      const want = expected(spDecode, context, gen);
      for (let seed = 0; seed < 20; seed++) {
        expect(stream(spDecode, context, chunks(gen, seed === 0 ? 1 : 3, rng(seed))).text).toBe(want);
      }
    }
    expect(stream(spDecode, [3], gen.map((i) => [i])).text).toBe(' there was, x   time');
  });

  it('decodes O(window) tokens per step, not O(total)', () => {
    let maxLen = 0;
    const decode: Decode = (ids) => {
      maxLen = Math.max(maxLen, ids.length);
      return byteDecode(ids);
    };
    const d = new IncrementalDetokenizer(decode, bytes('ctx'));
    const ids = bytes('杭州 abc 🎉 '.repeat(200));
    let out = '';
    for (const id of ids) out += d.push([id]);
    expect(out + d.flush()).toBe(byteDecode(ids));
    expect(maxLen).toBeLessThanOrEqual(8);
  });
});

const SHARED =
  process.env.EDGELLM_SHARED_MODELS ?? fileURLToPath(new URL('../../../shared/models', import.meta.url));
const MODELS = ['karpathy__stories260K', 'hf-internal-testing__tiny-random-LlamaForCausalLM'];

for (const model of MODELS) {
  const dir = `${SHARED}/${model}`;
  const name = `IncrementalDetokenizer with the real ${model} tokenizer`;
  const skipNote = ` (SKIPPED: ${dir} not found; set EDGELLM_SHARED_MODELS)`;
  describe.skipIf(!existsSync(dir))(existsSync(dir) ? name : name + skipNote, async () => {
    env.allowRemoteModels = false;
    const tok = existsSync(dir) ? await AutoTokenizer.from_pretrained(dir) : undefined;
    const encode = (s: string) => tok!.encode(s, { add_special_tokens: false });
    const decode: Decode = (ids) => tok!.decode(ids, { skip_special_tokens: true });

    const cases = [
      ['Once upon a time', ', there was a little girl'],
      ['Once upon a time', ' there was a little girl'],
      ['杭州', '的西湖很美'],
      ['I love', ' 🍕 and 🎉!'],
      ['Hello', 'Once upon a time, there was a little girl. 杭州的西湖很美. I love 🍕 and 🎉!'],
    ];

    it.each(cases)('streams %j + %j exactly like a full decode', (prompt, continuation) => {
      const promptIds = encode(prompt);
      const ids = encode(prompt + continuation);
      expect(ids.slice(0, promptIds.length)).toEqual(promptIds);
      const gen = ids.slice(promptIds.length);
      const fullText = decode(ids).slice(decode(promptIds).length);
      expect(fullText).toBe(continuation);
      const rand = rng(7);
      for (const ctxLen of [1, 4, promptIds.length]) {
        const context = [1, ...promptIds].slice(-ctxLen); // may include BOS
        const want = expected(decode, context, gen);
        expect(want).toBe(continuation);
        for (const max of [1, 1, 2, 3, 7]) {
          for (let trial = 0; trial < 5; trial++) {
            const { pushes, text } = stream(decode, context, chunks(gen, max, rand));
            expect(text).toBe(want);
            for (const p of pushes) expect(p).not.toContain('\uFFFD');
          }
        }
      }
    });

    it('leading space: generated tokens decoded alone lose it; with prompt context they keep it', () => {
      const promptIds = encode('Once upon a time');
      const gen = encode('Once upon a time there was').slice(promptIds.length);
      expect(decode(gen)).toBe('there was');
      expect(stream(decode, promptIds.slice(-1), gen.map((i) => [i])).text).toBe(' there was');
      expect(stream(decode, [], gen.map((i) => [i])).text).toBe('there was');
    });

    it('random token ids (as a random model emits), incl. specials and byte tokens, random splits', () => {
      const rand = rng(11);
      const vocab = model.includes('stories') ? 512 : 32000;
      for (let trial = 0; trial < 100; trial++) {
        const ids = Array.from({ length: 16 }, () => Math.floor(rand() * (rand() < 0.5 ? 300 : vocab)));
        const context = encode('Once upon a time').slice(-3);
        const want = expected(decode, context, ids);
        expect(stream(decode, context, chunks(ids, trial % 2 ? 1 : 4, rand)).text).toBe(want);
      }
    });

    it('a lone byte-fallback token decodes to U+FFFD and is held back', () => {
      const ids = encode('杭').filter((i) => decode([i]) !== '');
      expect(ids.length).toBe(3);
      expect(decode([ids[0]])).toBe('\uFFFD');
      expect(decode(ids.slice(0, 2))).toBe('\uFFFD'); // one U+FFFD for an incomplete sequence
      const d = new IncrementalDetokenizer(decode, encode('a'));
      expect([d.push([ids[0]]), d.push([ids[1]]), d.push([ids[2]]), d.flush()]).toEqual(['', '', '杭', '']);
    });
  });
}
