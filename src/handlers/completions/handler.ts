/**
 * POST /v1/completions: OpenAI text completions (the Chinese-LLaMA-Alpaca server's main endpoint).
 * @module
 */
import type { FinishReason } from '../../runtime/types.js';
import { newId, nowSeconds, type Handler } from '../context.js';
import { readJson } from '../shared/read-json.js';
import { merge, startAll } from '../shared/start-generation.js';
import { jsonResponse, streamResponse } from '../shared/stream-response.js';
import { validate } from '../shared/validate.js';
import { checkCompletionRequest, completionRequestSchema, toGenerateRequests } from './schema.js';

export const handleCompletions: Handler = async (request, ctx) => {
  const body = validate(completionRequestSchema, await readJson(request, ctx.maxBodyBytes));
  checkCompletionRequest(body);
  const requests = toGenerateRequests(body, request.signal);
  const started = await startAll(ctx.runtime, requests);
  const n = body.n ?? 1;
  const base = { id: newId('cmpl'), object: 'text_completion', created: nowSeconds(), model: body.model || ctx.runtime.models()[0].id };
  const echo = (i: number) => (body.echo ? started[i].start.promptText : '');
  const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (index: number, text: string, finish: FinishReason | null) => ({
      ...base,
      choices: [{ index, text, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    async function* chunks() {
      // try/finally: a client that cancels during the echo chunks (before merge() started) must still stop the generations.
      try {
        for (const [p, s] of started.entries()) {
          usage.prompt_tokens += s.start.promptTokens;
          if (body.echo) for (let k = 0; k < n; k++) yield chunk(p * n + k, echo(p), null);
        }
        for await (const [p, event] of merge(started.map((s) => s.events))) {
          if (event.type === 'delta' && event.text) yield chunk(p * n + event.index, event.text, null);
          if (event.type === 'finish') yield chunk(p * n + event.index, '', event.reason);
          if (event.type === 'usage') usage.completion_tokens += event.completionTokens;
        }
      } finally {
        await Promise.all(started.map((s) => s.events.return?.()));
      }
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      if (includeUsage) yield { ...base, choices: [], usage };
    }
    return streamResponse('sse', chunks(), ctx.onError);
  }

  const choices = started.flatMap((_, p) =>
    Array.from({ length: n }, (_, k) => ({ index: p * n + k, text: echo(p), logprobs: null, finish_reason: 'stop' as FinishReason })),
  );
  for await (const [p, event] of merge(started.map((s) => s.events))) {
    if (event.type === 'delta') choices[p * n + event.index].text += event.text;
    if (event.type === 'finish') choices[p * n + event.index].finish_reason = event.reason;
    if (event.type === 'usage') {
      usage.prompt_tokens += event.promptTokens;
      usage.completion_tokens += event.completionTokens;
    }
  }
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return jsonResponse({ ...base, choices, usage });
};
