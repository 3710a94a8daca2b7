/**
 * Prompt templates. A template turns a prompt (text or messages) into text plus whether the
 * tokenizer should add its special tokens (BOS). Chat templates that write BOS themselves
 * (the model's own Jinja template, llama-2, chatml) say false.
 * @module
 */
import { invalidRequest } from '../errors.js';
import type { Tokenizer } from './tokenizer.js';
import { inlineTools, templateTools, toolSupportOf } from './tools/tool-prompt.js';
import type { ChatMessage, ToolDefinition } from './types.js';

export interface RenderedPrompt {
  text: string;
  addSpecialTokens: boolean;
}

export const COMPLETION_TEMPLATES = ['raw', 'alpaca'] as const;
export type CompletionTemplate = (typeof COMPLETION_TEMPLATES)[number];

export const CHAT_TEMPLATES = ['model', 'alpaca', 'chatml', 'llama-2', 'raw'] as const;
export type ChatTemplate = (typeof CHAT_TEMPLATES)[number];

// The Chinese-LLaMA-Alpaca server's instruction template, verbatim.
const ALPACA_PREAMBLE =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

export function renderCompletion(template: CompletionTemplate, prompt: string): RenderedPrompt {
  if (template === 'alpaca') {
    return { text: `${ALPACA_PREAMBLE}\n\n### Instruction:\n${prompt}\n\n### Response: `, addSpecialTokens: true };
  }
  return { text: prompt, addSpecialTokens: true };
}

/**
 * Renders a conversation. Tools (and the calls and results in the conversation) go through the
 * model's template when it takes them, else into the text (see tools/tool-prompt.ts).
 */
export function renderChat(template: ChatTemplate, conversation: ChatMessage[], tokenizer: Tokenizer, tools: ToolDefinition[] = []): RenderedPrompt {
  const native = template === 'model' && toolSupportOf(tokenizer.chatTemplate).native;
  const hasToolTurns = conversation.some((m) => m.role === 'tool' || m.toolCalls?.length);
  const messages = !native && (tools.length || hasToolTurns) ? inlineTools(conversation, tools) : conversation;
  switch (template) {
    case 'model':
      if (!tokenizer.applyChatTemplate) {
        throw invalidRequest('This model has no chat_template; choose a named chat template (alpaca, chatml, llama-2, raw).', 'input', 'chat_template_missing');
      }
      return { text: tokenizer.applyChatTemplate(messages, native && tools.length ? templateTools(tools) : undefined), addSpecialTokens: false };
    case 'alpaca':
      return { text: alpacaChat(messages), addSpecialTokens: true };
    case 'chatml':
      return {
        text: messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n',
        addSpecialTokens: false,
      };
    case 'llama-2':
      return { text: llama2Chat(messages), addSpecialTokens: false };
    case 'raw':
      return { text: messages.map((m) => m.content).join('\n'), addSpecialTokens: true };
  }
}

/** Multi-turn Alpaca: each user turn is an instruction, each assistant turn a response. */
function alpacaChat(messages: ChatMessage[]): string {
  const system = messages.find((m) => m.role === 'system')?.content ?? ALPACA_PREAMBLE;
  let text = `${system}\n\n`;
  for (const m of messages) {
    if (m.role === 'user') text += `### Instruction:\n${m.content}\n\n`;
    else if (m.role === 'assistant') text += `### Response: ${m.content}\n\n`;
  }
  return text + '### Response: ';
}

function llama2Chat(messages: ChatMessage[]): string {
  const system = messages.find((m) => m.role === 'system')?.content;
  const turns = messages.filter((m) => m.role !== 'system');
  let text = '';
  let first = true;
  for (const m of turns) {
    if (m.role === 'assistant') {
      text += ` ${m.content.trim()} </s>`;
      continue;
    }
    const content = first && system ? `<<SYS>>\n${system}\n<</SYS>>\n\n${m.content}` : m.content;
    text += `<s>[INST] ${content.trim()} [/INST]`;
    first = false;
  }
  return text;
}
