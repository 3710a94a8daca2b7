/**
 * Incremental parser for a server-sent-events body: feed it decoded text as it arrives, in pieces
 * cut anywhere, and get back the `data` of each event completed so far (multi-line data joined with
 * `\n`). Comments and the other fields (`event`, `id`, `retry`) are skipped: the chat needs none.
 *
 * Self-contained on purpose: the page embeds it with `Function.prototype.toString()`.
 * @module
 */
export interface SseParser {
  push(text: string): string[];
}

export function createSseParser(): SseParser {
  let buffer = '';
  let data: string[] = [];
  return {
    push(text) {
      buffer += text;
      const events: string[] = [];
      for (let end = buffer.search(/[\r\n]/); end >= 0; end = buffer.search(/[\r\n]/)) {
        // A trailing \r may be the first half of \r\n: wait for the next piece.
        if (buffer[end] === '\r' && end === buffer.length - 1) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) events.push(data.join('\n'));
          data = [];
        } else if (line === 'data' || line.startsWith('data:')) {
          data.push(line.slice(line[5] === ' ' ? 6 : 5));
        }
      }
      return events;
    },
  };
}
