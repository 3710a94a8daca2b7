import { describe, expect, it } from 'vitest';
import { renderChat, renderCompletion } from './templates.js';
import type { Tokenizer } from './tokenizer.js';

const tokenizer: Tokenizer = {
  encode: () => [],
  decode: () => '',
  eosTokenIds: [2],
  applyChatTemplate: (messages) => messages.map((m) => `[${m.role}]${m.content}`).join(''),
};

describe('renderCompletion', () => {
  it('wraps the prompt in the Alpaca instruction template', () => {
    expect(renderCompletion('alpaca', 'Tell me where the capital of China is')).toEqual({
      text:
        'Below is an instruction that describes a task. Write a response that appropriately completes the request.' +
        '\n\n### Instruction:\nTell me where the capital of China is\n\n### Response: ',
      addSpecialTokens: true,
    });
  });

  it('passes raw prompts through', () => {
    expect(renderCompletion('raw', 'Once upon a time')).toEqual({ text: 'Once upon a time', addSpecialTokens: true });
  });
});

describe('renderChat', () => {
  const conversation = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi' },
    { role: 'assistant' as const, content: 'Hello!' },
    { role: 'user' as const, content: 'Tell me about West Lake' },
  ];

  it('uses the model template and lets it add BOS', () => {
    expect(renderChat('model', conversation.slice(1, 2), tokenizer)).toEqual({ text: '[user]Hi', addSpecialTokens: false });
  });

  it('rejects the model template when the tokenizer has none', () => {
    const { applyChatTemplate: _, ...plain } = tokenizer;
    // No CLI flag here: the host adds its own advice (see the engine's `advice` option).
    expect(() => renderChat('model', conversation, plain)).toThrow(/no chat_template; choose a named chat template/);
    expect(() => renderChat('model', conversation, plain)).not.toThrow(/--/);
  });

  it('renders multi-turn alpaca with the system message as preamble', () => {
    expect(renderChat('alpaca', conversation, tokenizer).text).toBe(
      'Be brief.\n\n### Instruction:\nHi\n\n### Response: Hello!\n\n### Instruction:\nTell me about West Lake\n\n### Response: ',
    );
  });

  it('renders chatml ending with the assistant header', () => {
    expect(renderChat('chatml', conversation.slice(1, 2), tokenizer).text).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('renders llama-2 with the system prompt inside the first instruction', () => {
    expect(renderChat('llama-2', conversation, tokenizer).text).toBe(
      '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Tell me about West Lake [/INST]',
    );
  });
});
