import { describe, expect, it } from 'vitest';
import { createHfTokenizer } from '../../model/hf-tokenizer.js';
import { renderChat } from '../templates.js';
import type { ChatMessage, ToolDefinition } from '../types.js';
import { inlineTools, toolSupportOf } from './tool-prompt.js';

const WEATHER: ToolDefinition = {
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

const ROUND_TRIP: ChatMessage[] = [
  { role: 'user', content: 'Weather in Paris and Rome?' },
  {
    role: 'assistant',
    content: '',
    toolCalls: [
      { id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris"}' },
      { id: 'call_2', name: 'get_weather', arguments: '{"city": "Rome"}' },
    ],
  },
  { role: 'tool', content: '{"temp": 18}', toolCallId: 'call_1' },
  { role: 'tool', content: '{"temp": 24}', toolCallId: 'call_2' },
];

/** A minimal word-level tokenizer.json: enough for createHfTokenizer to render templates. */
const TOKENIZER_JSON = {
  model: { type: 'WordLevel', vocab: { '[UNK]': 0 }, unk_token: '[UNK]' },
  pre_tokenizer: { type: 'Whitespace' },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  normalizer: null,
  post_processor: null,
  added_tokens: [],
};
const CHATML = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
// A Qwen-2.5-like template that takes tools natively.
const NATIVE =
  "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>{% endif %}" +
  "{% for m in messages %}[{{ m.role }}]{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }}:{{ c.function.arguments | tojson }}</tool_call>{% endfor %}{% else %}{{ m.content }}{% endif %}{% if m.tool_call_id %}({{ m.tool_call_id }}){% endif %}{% endfor %}[assistant]";

const tokenizer = (template: string) => createHfTokenizer(TOKENIZER_JSON, { chat_template: template }, []);

describe('tools in the prompt', () => {
  it('sees whether a template takes tools, and its call format', () => {
    expect(toolSupportOf(CHATML)).toEqual({ native: false, format: 'hermes' });
    expect(toolSupportOf(NATIVE)).toEqual({ native: true, format: 'hermes' });
    expect(toolSupportOf('{% if tools %}{{ "<|python_tag|>" }}{% endif %}')).toEqual({ native: true, format: 'json' });
    expect(toolSupportOf(undefined)).toEqual({ native: false, format: 'hermes' });
  });

  it('inlines tools for a template without them: a system prompt, <tool_call> text, one user turn of results', () => {
    const messages = inlineTools(ROUND_TRIP, [WEATHER]);
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(messages[0].content).toContain('"name":"get_weather"');
    expect(messages[2].content).toBe(
      '<tool_call>\n{"name":"get_weather","arguments":{"city":"Paris"}}\n</tool_call>\n<tool_call>\n{"name":"get_weather","arguments":{"city":"Rome"}}\n</tool_call>',
    );
    expect(messages[3].content).toBe('<tool_response>\n{"temp": 18}\n</tool_response>\n<tool_response>\n{"temp": 24}\n</tool_response>');
    // A system message of the client's own keeps its text first.
    const withSystem = inlineTools([{ role: 'system', content: 'Be brief.' }, ...ROUND_TRIP], [WEATHER]);
    expect(withSystem[0].content.startsWith('Be brief.\n\nYou may call functions')).toBe(true);
    expect(withSystem.filter((m) => m.role === 'system')).toHaveLength(1);
  });

  it("renders through the model's template when it takes tools, with arguments as objects", () => {
    const { text } = renderChat('model', ROUND_TRIP, tokenizer(NATIVE), [WEATHER]);
    expect(text).toBe(
      '<tools>get_weather;</tools>[user]Weather in Paris and Rome?[assistant]<tool_call>get_weather:{"city": "Paris"}</tool_call><tool_call>get_weather:{"city": "Rome"}</tool_call>' +
        '[tool]{"temp": 18}(call_1)[tool]{"temp": 24}(call_2)[assistant]',
    );
  });

  it("renders through a template without tools by inlining them (and renders a past round trip without tools too)", () => {
    const { text } = renderChat('model', ROUND_TRIP, tokenizer(CHATML), [WEATHER]);
    expect(text).toContain('<|im_start|>system\nYou may call functions');
    expect(text).toContain('<|im_start|>user\n<tool_response>\n{"temp": 18}');
    expect(text.endsWith('<|im_start|>assistant\n')).toBe(true);
    const noTools = renderChat('chatml', ROUND_TRIP, tokenizer(CHATML)).text;
    expect(noTools).not.toContain('You may call functions');
    expect(noTools).toContain('<tool_call>\n{"name":"get_weather"');
  });
});
