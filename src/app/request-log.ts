/**
 * One record per request for access logs: status, tokens in and out, time to first token and total
 * time. Token counts come from watching the runtime the handlers call (a per-request wrapper), so no
 * handler has to report anything; the record is finished when the response body ends or the client
 * goes away, which for a stream is long after the handler returned.
 * @module
 */
import type { GenerationEvent, InferenceRuntime } from '../runtime/types.js';

export interface RequestLog {
  method: string;
  /** Path as requested, including any mount point; no query string (it may carry secrets). */
  path: string;
  status: number;
  promptTokens: number;
  completionTokens: number;
  /** Milliseconds from the request's arrival to the first generated text; undefined when none. */
  ttftMs?: number;
  totalMs: number;
  /** The client went away before the body was finished. */
  aborted: boolean;
  /** The request's `x-request-id` (the client's, or a generated one). */
  requestId?: string;
}

export interface RequestMeter {
  runtime: InferenceRuntime;
  /** Wraps the response so `onEnd` fires once, when its body is done (or at once when it has none). */
  finish(response: Response, onEnd: (log: RequestLog) => void): Response;
}

export function meterRequest(
  runtime: InferenceRuntime,
  request: Request,
  requestId?: string,
  now: () => number = () => performance.now(),
): RequestMeter {
  const started = now();
  let promptTokens = 0;
  // Usage events are authoritative; tokens seen in deltas count for streams cut short before them.
  let usageTokens: number | undefined;
  let deltaTokens = 0;
  let firstText: number | undefined;

  const observe = (event: GenerationEvent): void => {
    if (event.type === 'start') promptTokens += event.promptTokens;
    else if (event.type === 'delta') {
      deltaTokens += event.tokens.length;
      if (firstText === undefined && event.tokens.length > 0) firstText = now();
    } else if (event.type === 'usage') usageTokens = (usageTokens ?? 0) + event.completionTokens;
  };

  const metered: InferenceRuntime = {
    specificationVersion: runtime.specificationVersion,
    status: () => runtime.status(),
    models: () => runtime.models(),
    tokenize: (...args) => runtime.tokenize(...args),
    close: () => runtime.close(),
    metrics: () => runtime.metrics?.(),
    generate: (req) => ({
      async *[Symbol.asyncIterator]() {
        for await (const event of runtime.generate(req)) {
          observe(event);
          yield event;
        }
      },
    }),
    embed: async (req) => {
      const result = await runtime.embed(req);
      promptTokens += result.promptTokens;
      return result;
    },
  };

  const record = (status: number, aborted: boolean): RequestLog => ({
    method: request.method,
    path: new URL(request.url).pathname,
    status,
    promptTokens,
    completionTokens: usageTokens ?? deltaTokens,
    ttftMs: firstText === undefined ? undefined : firstText - started,
    totalMs: now() - started,
    aborted,
    ...(requestId !== undefined && { requestId }),
  });

  return {
    runtime: metered,
    finish(response, onEnd) {
      if (!response.body) {
        onEnd(record(response.status, false));
        return response;
      }
      let ended = false;
      const end = (aborted: boolean) => {
        if (ended) return;
        ended = true;
        onEnd(record(response.status, aborted));
      };
      const reader = response.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await reader.read();
            if (done) {
              controller.close();
              end(false);
            } else controller.enqueue(value);
          } catch (error) {
            controller.error(error);
            end(true);
          }
        },
        async cancel(reason) {
          end(true);
          await reader.cancel(reason);
        },
      });
      return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    },
  };
}

/** `POST /v1/chat/completions 200 in=12 out=34 ttft=45ms 1.23s` */
export function formatRequestLog(log: RequestLog): string {
  const parts = [log.method, log.path, String(log.status)];
  if (log.promptTokens || log.completionTokens) parts.push(`in=${log.promptTokens}`, `out=${log.completionTokens}`);
  if (log.ttftMs !== undefined) parts.push(`ttft=${Math.round(log.ttftMs)}ms`);
  parts.push(log.totalMs < 1000 ? `${Math.round(log.totalMs)}ms` : `${(log.totalMs / 1000).toFixed(2)}s`);
  if (log.aborted) parts.push('(client disconnected)');
  if (log.requestId !== undefined) parts.push(`id=${log.requestId}`);
  return parts.join(' ');
}

/** Wire names for JSON logs, the same snake_case as the API's usage object. */
export function requestLogJson(log: RequestLog): Record<string, unknown> {
  return {
    method: log.method,
    path: log.path,
    status: log.status,
    prompt_tokens: log.promptTokens,
    completion_tokens: log.completionTokens,
    ttft_ms: log.ttftMs === undefined ? null : Math.round(log.ttftMs * 10) / 10,
    total_ms: Math.round(log.totalMs * 10) / 10,
    aborted: log.aborted,
    request_id: log.requestId ?? null,
  };
}
