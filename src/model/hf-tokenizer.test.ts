import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MODEL2VEC, sharedModel, STORIES, TINY_RANDOM } from '../../test/helpers/shared-models.js';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { encodeContinuation, type Tokenizer } from '../runtime/tokenizer.js';
import type { ChatMessage } from '../runtime/types.js';
import { chatTemplateOf, configToken, createHfTokenizer } from './hf-tokenizer.js';

const TEXTS = [
  'Once upon a time',
  '  leading and trailing spaces  ',
  'Line one\nline two\n\n\ttabbed',
  'Ünïcödé, 中文, emoji 🦙 and <s> special </s> text',
  'The weather is really nice today',
  '',
];

const CONVERSATIONS: ChatMessage[][] = [
  [{ role: 'user', content: 'Tell me a story' }],
  [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hello! How are you?' },
    { role: 'assistant', content: ' Fine. ' },
    { role: 'user', content: 'And now?' },
  ],
];

const load = (dir: string) => {
  const json = (name: string) => JSON.parse(readFileSync(`${dir}/${name}`, 'utf8'));
  return createHfTokenizer(json('tokenizer.json'), json('tokenizer_config.json'), []);
};

/** The reference: transformers.js' AutoTokenizer, wrapped as the engine's Tokenizer. */
async function transformersTokenizer(dir: string): Promise<Tokenizer> {
  env.allowRemoteModels = false;
  const tok = await AutoTokenizer.from_pretrained(dir);
  const hasTemplate = Boolean((tok as unknown as { chat_template?: unknown }).chat_template);
  return {
    encode: (text, addSpecialTokens) => tok.encode(text, { add_special_tokens: addSpecialTokens }),
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
    applyChatTemplate: hasTemplate
      ? (messages: ChatMessage[]) => tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true }) as string
      : undefined,
    bosTokenId: typeof tok.bos_token_id === 'number' ? tok.bos_token_id : undefined,
    eosTokenIds: typeof tok.eos_token_id === 'number' ? [tok.eos_token_id] : [],
  };
}

describe.each([STORIES, TINY_RANDOM, MODEL2VEC])('the tokenizer on %s', (name) => {
  const dir = sharedModel(name);

  it.skipIf(!dir)('gives the same ids, text and special tokens as transformers.js', async () => {
    const web = load(dir!);
    const node = await transformersTokenizer(dir!);
    for (const text of TEXTS) {
      for (const special of [true, false]) {
        const ids = web.encode(text, special);
        expect(ids, `${JSON.stringify(text)} special=${special}`).toEqual(node.encode(text, special));
        if (ids.length) expect(web.decode(ids)).toBe(node.decode(ids));
      }
    }
    expect(web.bosTokenId).toBe(node.bosTokenId);
    expect(web.eosTokenIds).toEqual(node.eosTokenIds);
  });

  it.skipIf(!dir)('renders the chat template exactly as transformers.js does', async () => {
    const web = load(dir!);
    const node = await transformersTokenizer(dir!);
    expect(Boolean(web.applyChatTemplate)).toBe(Boolean(node.applyChatTemplate));
    if (!web.applyChatTemplate || !node.applyChatTemplate) return;
    for (const messages of CONVERSATIONS) expect(web.applyChatTemplate(messages)).toBe(node.applyChatTemplate(messages));
  });
});

describe('encodeContinuation', () => {
  const dir = sharedModel(TINY_RANDOM);

  it.skipIf(!dir)('encodes a session turn\'s new text as the whole prompt has it at that point (Llama 2, dummy prefix)', () => {
    const tok = load(dir!);
    const head = '<s>[INST] Hello there [/INST] I am fine.';
    for (const tail of [' </s><s>[INST] And now? [/INST]', '\n\n### Instruction:\nnext\n\n### Response: ', 'more words']) {
      const whole = tok.encode(head + tail, false);
      const start = tok.encode(head, false);
      expect(whole.slice(0, start.length)).toEqual(start);
      expect(encodeContinuation(tok, tail), JSON.stringify(tail)).toEqual(whole.slice(start.length));
      // Encoded alone, the first word would get the dummy prefix space.
      if (tail.startsWith(' ')) expect(tok.encode(tail, false)).not.toEqual(whole.slice(start.length));
    }
    expect(encodeContinuation(tok, '')).toEqual([]);
  });
});

describe('tokenizer config helpers', () => {
  it('reads tokens given as strings or AddedToken objects', () => {
    expect(configToken({ bos_token: '<s>' }, 'bos_token')).toBe('<s>');
    expect(configToken({ bos_token: { __type: 'AddedToken', content: '<s>' } }, 'bos_token')).toBe('<s>');
    expect(configToken({ bos_token: null }, 'bos_token')).toBeUndefined();
  });

  it('takes the default of named chat templates', () => {
    expect(chatTemplateOf({ chat_template: 'x' })).toBe('x');
    expect(chatTemplateOf({ chat_template: [{ name: 'tool_use', template: 't' }, { name: 'default', template: 'd' }] })).toBe('d');
    expect(chatTemplateOf({})).toBeUndefined();
  });

  it('raises the template exception for a conversation the template refuses', () => {
    const dir = sharedModel(TINY_RANDOM);
    if (!dir) return;
    expect(() => load(dir).applyChatTemplate!([{ role: 'assistant', content: 'first' }])).toThrow(/alternate/);
  });
});
