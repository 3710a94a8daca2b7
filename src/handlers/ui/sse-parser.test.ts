import { describe, expect, it } from 'vitest';
import { createSseParser } from './sse-parser.js';

const BODY =
  ': comment\n' +
  'data: {"a":1}\n\n' +
  'event: message\nid: 7\ndata: line one\ndata:line two\n\n' +
  'data: {"text":"é 😀 \\n"}\r\n\r\n' +
  'data\n\n' +
  'data: [DONE]\n\n';
const EVENTS = ['{"a":1}', 'line one\nline two', '{"text":"é 😀 \\n"}', '', '[DONE]'];

const feed = (pieces: string[]) => {
  const parser = createSseParser();
  return pieces.flatMap((piece) => parser.push(piece));
};

describe('createSseParser', () => {
  it('parses a whole body', () => {
    expect(feed([BODY])).toEqual(EVENTS);
  });

  it('gives the same events however the body is cut', () => {
    for (let cut = 0; cut <= BODY.length; cut++) expect(feed([BODY.slice(0, cut), BODY.slice(cut)]), `cut at ${cut}`).toEqual(EVENTS);
    expect(feed([...BODY])).toEqual(EVENTS);
  });

  it('returns an event only once its blank line has arrived', () => {
    const parser = createSseParser();
    expect(parser.push('data: {"a"')).toEqual([]);
    expect(parser.push(':1}\n')).toEqual([]);
    expect(parser.push('\n')).toEqual(['{"a":1}']);
  });

  it('handles bare \\r line ends', () => {
    expect(feed(['data: x\r\rdata: y\r', '\r', 'data: z\r\n\r\n'])).toEqual(['x', 'y', 'z']);
  });

  it('works when rebuilt from its own text (the page embeds it)', () => {
    const rebuilt = new Function(`return (${createSseParser.toString()});`)() as typeof createSseParser;
    const parser = rebuilt();
    expect(parser.push(BODY)).toEqual(EVENTS);
  });
});
