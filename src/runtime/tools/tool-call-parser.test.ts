import { describe, expect, it } from 'vitest';
import { parseToolCalls, ToolCallStream, type ToolCallFormat, type ToolCallPiece } from './tool-call-parser.js';

/** Streams `text` split at every `size` characters and folds the pieces into content and calls. */
function streamed(format: ToolCallFormat, text: string, size: number) {
  const stream = new ToolCallStream(format);
  const pieces: ToolCallPiece[] = [];
  for (let i = 0; i < text.length; i += size) pieces.push(...stream.push(text.slice(i, i + size)));
  pieces.push(...stream.end());
  let content = '';
  const calls: Array<{ name: string; arguments: string; ended: boolean }> = [];
  for (const p of pieces) {
    if (p.kind === 'text') content += p.text;
    else if (p.kind === 'start') calls[p.call] = { name: p.name, arguments: '', ended: false };
    else if (p.kind === 'arguments') calls[p.call].arguments += p.text;
    else calls[p.call].ended = true;
  }
  return { content, calls, pieces };
}

const CASES: Array<{ name: string; format: ToolCallFormat; text: string; content: string; calls: Array<{ name: string; arguments: unknown }> }> = [
  {
    name: 'one Hermes call',
    format: 'hermes',
    text: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>',
    content: '',
    calls: [{ name: 'get_weather', arguments: { city: 'Paris', unit: 'c' } }],
  },
  {
    name: 'text around two Hermes calls, arguments before the name, braces and tags inside strings',
    format: 'hermes',
    text:
      'Let me check. <tool_call>{"arguments": {"q": "a } b \\" <tool_call>", "n": [1, {"x": 2}]}, "name": "search"}</tool_call>\n' +
      '<tool_call>{"name": "noop", "arguments": {}}</tool_call> Done.',
    content: 'Let me check. Done.',
    calls: [
      { name: 'search', arguments: { q: 'a } b " <tool_call>', n: [1, { x: 2 }] } },
      { name: 'noop', arguments: {} },
    ],
  },
  {
    name: 'arguments given as a JSON string, and a call without arguments',
    format: 'hermes',
    text: '<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call><tool_call>{"name": "g"}</tool_call>',
    content: '',
    calls: [
      { name: 'f', arguments: { a: 1 } },
      { name: 'g', arguments: {} },
    ],
  },
  {
    name: 'text that only looks like a tag',
    format: 'hermes',
    text: 'a <tool is not <tool_cal a call',
    content: 'a <tool is not <tool_cal a call',
    calls: [],
  },
  {
    name: 'a Hermes block that is not a call stays content',
    format: 'hermes',
    text: 'x <tool_call>not json</tool_call> y',
    content: 'x <tool_call>not json</tool_call> y',
    calls: [],
  },
  {
    name: 'Llama 3 JSON calls separated by ;',
    format: 'json',
    text: ' {"name": "a", "parameters": {"k": true}}; {"name": "b", "parameters": {"k": null}}',
    content: '',
    calls: [
      { name: 'a', arguments: { k: true } },
      { name: 'b', arguments: { k: null } },
    ],
  },
  {
    name: "Mistral's array (its [TOOL_CALLS] marker is a special token, gone from the text)",
    format: 'json',
    text: '[{"name": "a", "arguments": {"x": [1, 2]}}, {"name": "b", "arguments": {}}]',
    content: '',
    calls: [
      { name: 'a', arguments: { x: [1, 2] } },
      { name: 'b', arguments: {} },
    ],
  },
  {
    name: 'json format: a reply that does not start with a call is all content',
    format: 'json',
    text: 'The answer is {"name": "x"}.',
    content: 'The answer is {"name": "x"}.',
    calls: [],
  },
];

describe('tool call parsing', () => {
  it.each(CASES)('$name: the same content and calls whatever the chunking', ({ format, text, content, calls }) => {
    expect(parseToolCalls(format, text).content).toBe(content);
    for (const size of [1, 2, 3, 7, text.length]) {
      const got = streamed(format, text, size);
      expect(got.content, `chunks of ${size}`).toBe(content);
      expect(got.calls.map((c) => ({ name: c.name, arguments: JSON.parse(c.arguments) }))).toEqual(calls);
      expect(got.calls.every((c) => c.ended)).toBe(true);
    }
  });

  it('streams the arguments in pieces as they arrive, after the name', () => {
    const stream = new ToolCallStream('hermes');
    expect(stream.push('<tool_call>{"name": "f", ')).toEqual([{ kind: 'start', call: 0, name: 'f' }]);
    expect(stream.push('"arguments": {"city": "Pa')).toEqual([{ kind: 'arguments', call: 0, text: '{"city": "Pa' }]);
    expect(stream.push('ris"}}')).toEqual([
      { kind: 'arguments', call: 0, text: 'ris"}' },
      { kind: 'end', call: 0 },
    ]);
    expect(stream.push('</tool_call>')).toEqual([]);
    expect(stream.end()).toEqual([]);
  });

  it('holds back only what may start a tag', () => {
    const stream = new ToolCallStream('hermes');
    expect(stream.push('Hello <tool')).toEqual([{ kind: 'text', text: 'Hello ' }]);
    expect(stream.push('s are fun')).toEqual([{ kind: 'text', text: '<tools are fun' }]);
  });

  it('ends a call cut short by the token limit with the arguments it had', () => {
    const got = streamed('hermes', '<tool_call>{"name": "f", "arguments": {"a": 1', 4);
    expect(got.calls).toEqual([{ name: 'f', arguments: '{"a": 1', ended: true }]);
  });
});
