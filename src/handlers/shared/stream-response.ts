/**
 * Streaming encoders: an async iterable of objects becomes an SSE (`data: ...\n\n`, ending in
 * `data: [DONE]`) or NDJSON response. The body pulls lazily, so a slow client slows the reads,
 * and cancelling the body stops the source. An error after the headers went out is written in
 * band as an OpenAI error object.
 * @module
 */
import { InferenceError, isInferenceError, toErrorBody } from '../../errors.js';

export type StreamFormat = 'sse' | 'ndjson';

const CONTENT_TYPES: Record<StreamFormat, string> = {
  sse: 'text/event-stream; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

export function encodeLine(format: StreamFormat, value: unknown): string {
  const json = JSON.stringify(value);
  return format === 'sse' ? `data: ${json}\n\n` : `${json}\n`;
}

export function streamResponse(
  format: StreamFormat,
  source: AsyncIterable<unknown>,
  onError?: (error: unknown) => void,
): Response {
  const iterator = source[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  // Set when the client cancels: a read that was in flight then has nowhere to go, and is no server error.
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await iterator.next();
        if (cancelled) return;
        if (!done) return controller.enqueue(encoder.encode(encodeLine(format, value)));
        if (format === 'sse') controller.enqueue(encoder.encode('data: [DONE]\n\n'));
      } catch (error) {
        if (cancelled) return;
        if (!isInferenceError(error)) onError?.(error);
        const known = isInferenceError(error) ? error : new InferenceError(500, 'The server had an error while generating.');
        controller.enqueue(encoder.encode(encodeLine(format, toErrorBody(known))));
        if (format === 'sse') controller.enqueue(encoder.encode('data: [DONE]\n\n'));
      }
      controller.close();
    },
    async cancel() {
      cancelled = true;
      await iterator.return?.();
    },
  });
  return new Response(body, {
    headers: { 'content-type': CONTENT_TYPES[format], 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
  });
}

export function jsonResponse(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });
}
