import { describe, expect, it } from 'vitest';
import { LineSplitter, parseStreamLine, readJsonStream } from './json-stream.js';

const bytes = (text: string) => new TextEncoder().encode(text);

function body(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

describe('LineSplitter', () => {
  it('cuts lines only at newlines, across chunks, and strips \\r', () => {
    const splitter = new LineSplitter();
    expect(splitter.push(bytes('{"a":'))).toEqual([]);
    expect(splitter.push(bytes('1}\r\n{"b"'))).toEqual(['{"a":1}']);
    expect(splitter.push(bytes(':2}\n\n'))).toEqual(['{"b":2}', '']);
    expect(splitter.end()).toEqual([]);
  });

  it('keeps a UTF-8 character split between chunks whole', () => {
    const encoded = bytes('héllo wörld\n');
    const splitter = new LineSplitter();
    const lines = [...encoded].flatMap((byte) => splitter.push(Uint8Array.of(byte)));
    expect(lines).toEqual(['héllo wörld']);
  });

  it('returns an unterminated last line at the end', () => {
    const splitter = new LineSplitter();
    splitter.push(bytes('one\ntwo'));
    expect(splitter.end()).toEqual(['two']);
  });
});

describe('parseStreamLine', () => {
  it('reads SSE data lines and [DONE], skipping the rest', () => {
    expect(parseStreamLine('sse', 'data: {"x":1}')).toEqual({ kind: 'data', value: { x: 1 } });
    expect(parseStreamLine('sse', 'data:{"x":2}')).toEqual({ kind: 'data', value: { x: 2 } });
    expect(parseStreamLine('sse', 'data: [DONE]')).toEqual({ kind: 'done' });
    expect(parseStreamLine('sse', ': keep-alive')).toEqual({ kind: 'skip' });
    expect(parseStreamLine('sse', 'event: message')).toEqual({ kind: 'skip' });
    expect(parseStreamLine('sse', '')).toEqual({ kind: 'skip' });
  });

  it('reads NDJSON lines', () => {
    expect(parseStreamLine('ndjson', '{"text":"hi","tokens":1,"finish_reason":null}')).toEqual({
      kind: 'data',
      value: { text: 'hi', tokens: 1, finish_reason: null },
    });
    expect(parseStreamLine('ndjson', '  ')).toEqual({ kind: 'skip' });
  });

  it('says what the server sent when a line is not JSON', () => {
    expect(() => parseStreamLine('ndjson', '<html>oops')).toThrow(/not JSON: <html>oops/);
  });
});

describe('readJsonStream', () => {
  it('yields NDJSON values as they arrive, the last line without a newline too', async () => {
    const values = await collect(readJsonStream(body([bytes('{"n":1}\n{"n"'), bytes(':2}\n{"n":3}')]), 'ndjson'));
    expect(values).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('stops at [DONE] in an SSE body', async () => {
    const stream = body([bytes('data: {"n":1}\n\ndata: [DONE]\n\ndata: {"n":2}\n\n')]);
    expect(await collect(readJsonStream(stream, 'sse'))).toEqual([{ n: 1 }]);
  });

  it('cancels the body when the reader leaves early', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(bytes('{"n":1}\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const value of readJsonStream(stream, 'ndjson')) {
      expect(value).toEqual({ n: 1 });
      break;
    }
    expect(cancelled).toBe(true);
  });
});
