/**
 * Puts tools into a chat prompt. A model whose Jinja chat template takes `tools` gets them (and
 * the conversation's calls and results) through its own template; for any other template the
 * tools go into a system message in the Hermes format, calls into the assistant's text as
 * `<tool_call>` blocks and results into user turns as `<tool_response>` blocks, so every template
 * (including ones that insist on alternating user and assistant turns) can render them.
 * @module
 */
import type { ToolCallFormat } from './tool-call-parser.js';
import type { ChatMessage, ToolDefinition } from '../types.js';

/** How a template expects tools: through its own `tools` variable, in which call format. */
export function toolSupportOf(templateSource: string | undefined): { native: boolean; format: ToolCallFormat } {
  const source = templateSource ?? '';
  const native = /\btools\b/.test(source);
  const json = source.includes('[TOOL_CALLS]') || source.includes('<|python_tag|>');
  return { native, format: native && json && !source.includes('<tool_call>') ? 'json' : 'hermes' };
}

/** The tools as OpenAI lists them, the shape chat templates iterate over. */
export function templateTools(tools: ToolDefinition[]): object[] {
  return tools.map((t) => ({
    type: 'function',
    function: { name: t.name, ...(t.description !== undefined && { description: t.description }), parameters: t.parameters ?? { type: 'object', properties: {} } },
  }));
}

/** Arguments as templates want them: an object when the text is JSON (templates apply `tojson`). */
function argumentsValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Messages in the shape Hugging Face chat templates read (`tool_calls`, `tool_call_id`). */
export function templateMessages(messages: ChatMessage[]): object[] {
  return messages.map((m) => ({
    role: m.role,
    content: m.content,
    ...(m.name !== undefined && { name: m.name }),
    ...(m.toolCallId !== undefined && { tool_call_id: m.toolCallId }),
    ...(m.toolCalls?.length && {
      tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: argumentsValue(c.arguments) } })),
    }),
  }));
}

const callBlock = (name: string, args: string) => `<tool_call>\n${JSON.stringify({ name, arguments: argumentsValue(args) })}\n</tool_call>`;

/** The system prompt edgellm uses for templates that do not take tools. */
export function defaultToolSystemPrompt(tools: ToolDefinition[]): string {
  return [
    'You may call functions to answer. The available functions are listed in <tools></tools> as JSON:',
    '<tools>',
    ...templateTools(tools).map((t) => JSON.stringify(t)),
    '</tools>',
    'To call a function, reply with one block per call, each holding a JSON object with the function name and its arguments:',
    callBlock('function_name', '{"argument": "value"}'),
  ].join('\n');
}

/**
 * The conversation rewritten for a template without tool support: the tool prompt joins the system
 * message (or becomes one), assistant calls become `<tool_call>` text, and each run of tool results
 * becomes one user turn of `<tool_response>` blocks.
 */
export function inlineTools(messages: ChatMessage[], tools: ToolDefinition[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  const prompt = tools.length ? defaultToolSystemPrompt(tools) : undefined;
  if (prompt && messages[0]?.role !== 'system') out.push({ role: 'system', content: prompt });
  messages.forEach((m, i) => {
    if (i === 0 && m.role === 'system' && prompt) return out.push({ role: 'system', content: `${m.content}\n\n${prompt}` });
    if (m.role === 'assistant' && m.toolCalls?.length) {
      const calls = m.toolCalls.map((c) => callBlock(c.name, c.arguments)).join('\n');
      return out.push({ role: 'assistant', content: m.content ? `${m.content}\n${calls}` : calls });
    }
    if (m.role === 'tool') {
      const block = `<tool_response>\n${m.content}\n</tool_response>`;
      const last = out[out.length - 1];
      if (last?.role === 'user' && last.content.startsWith('<tool_response>') && messages[i - 1]?.role === 'tool') last.content += `\n${block}`;
      else out.push({ role: 'user', content: block });
      return;
    }
    out.push({ role: m.role, content: m.content });
  });
  return out;
}
