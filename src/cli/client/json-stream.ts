/**
 * Reads a streamed response body as it arrives: newline-delimited JSON (`/generate`) or SSE
 * `data:` events ending in `[DONE]` (`/v1/chat/completions`). Network chunks split lines and
 * UTF-8 characters anywhere, so bytes are decoded in streaming mode and lines are cut only at `\n`.
 * @module
 */

export type StreamFormat = 'ndjson' | 'sse';

/** Bytes in, complete lines out (without the `\n` or a trailing `\r`). */
export class LineSplitter {
  private readonly decoder = new TextDecoder();
  private rest = '';

  push(bytes: Uint8Array): string[] {
    return this.cut(this.rest + this.decoder.decode(bytes, { stream: true }));
  }

  /** The last line when the body did not end with a newline. */
  end(): string[] {
    const tail = this.rest + this.decoder.decode();
    this.rest = '';
    return tail ? [tail.replace(/\r$/, '')] : [];
  }

  private cut(text: string): string[] {
    const lines = text.split('\n');
    this.rest = lines.pop()!;
    return lines.map((line) => line.replace(/\r$/, ''));
  }
}

export type StreamLine = { kind: 'data'; value: unknown } | { kind: 'done' } | { kind: 'skip' };

/** One line of either format. SSE comments, event names and blank separators are skipped. */
export function parseStreamLine(format: StreamFormat, line: string): StreamLine {
  let payload = line;
  if (format === 'sse') {
    if (!line.startsWith('data:')) return { kind: 'skip' };
    payload = line.slice(5).trimStart();
    if (payload === '[DONE]') return { kind: 'done' };
  }
  if (!payload.trim()) return { kind: 'skip' };
  try {
    return { kind: 'data', value: JSON.parse(payload) };
  } catch {
    throw new Error(`the server sent a line that is not JSON: ${payload.slice(0, 200)}`);
  }
}

/** The JSON values of a streamed body, in order, until it ends (or `[DONE]`). */
export async function* readJsonStream(body: ReadableStream<Uint8Array>, format: StreamFormat): AsyncGenerator<unknown> {
  const reader = body.getReader();
  const splitter = new LineSplitter();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const lines = done ? splitter.end() : splitter.push(value);
      for (const line of lines) {
        const parsed = parseStreamLine(format, line);
        if (parsed.kind === 'done') return;
        if (parsed.kind === 'data') yield parsed.value;
      }
      if (done) return;
    }
  } finally {
    // Stops the download when the reader leaves early (Ctrl-C, an error event).
    reader.cancel().catch(() => {});
  }
}
