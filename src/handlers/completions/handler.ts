/**
 * POST /v1/completions: OpenAI text completions (the Chinese-LLaMA-Alpaca server's main endpoint).
 * @module
 */
import type { FinishReason, TokenLogprob } from '../../runtime/types.js';
import { newId, nowSeconds, type Handler } from '../context.js';
import { appendCompletionLogprobs, emptyCompletionLogprobs, type CompletionLogprobs } from '../shared/logprobs-format.js';
import { readJson } from '../shared/read-json.js';
import { merge, startAll } from '../shared/start-generation.js';
import { COMPLETION_FIELDS } from '../shared/wire-fields.js';
import { jsonResponse, streamResponse } from '../shared/stream-response.js';
import { validate } from '../shared/validate.js';
import { checkCompletionRequest, completionRequestSchema, toGenerateRequests } from './schema.js';

export const handleCompletions: Handler = async (request, ctx) => {
  const body = validate(completionRequestSchema, await readJson(request, ctx));
  checkCompletionRequest(body);
  const requests = toGenerateRequests(body, request.signal);
  const started = await startAll(ctx.runtime, requests, COMPLETION_FIELDS);
  const n = body.best_of ?? body.n ?? 1; // choices generated per prompt
  const base = { id: newId('cmpl'), object: 'text_completion', created: nowSeconds(), model: body.model || ctx.runtime.models()[0].id };
  const echo = (i: number) => (body.echo ? started[i].start.promptText : '');
  const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage === true;
    const offsets = new Map<number, number>();
    const chunk = (index: number, text: string, finish: FinishReason | null, entries?: TokenLogprob[]) => {
      let logprobs: CompletionLogprobs | null = null;
      if (entries) {
        logprobs = emptyCompletionLogprobs();
        offsets.set(index, appendCompletionLogprobs(logprobs, entries, offsets.get(index) ?? 0));
      }
      return { ...base, choices: [{ index, text, logprobs, finish_reason: finish }], ...(includeUsage ? { usage: null } : {}) };
    };
    async function* chunks() {
      // try/finally: a client that cancels during the echo chunks (before merge() started) must still stop the generations.
      try {
        for (const [p, s] of started.entries()) {
          usage.prompt_tokens += s.start.promptTokens;
          if (body.echo) for (let k = 0; k < n; k++) yield chunk(p * n + k, echo(p), null);
        }
        for await (const [p, event] of merge(started.map((s) => s.events))) {
          if (event.type === 'delta' && (event.text || event.logprobs)) yield chunk(p * n + event.index, event.text, null, event.logprobs);
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

  const wantLogprobs = body.logprobs !== undefined && body.logprobs !== null;
  const choices = started.flatMap((_, p) =>
    Array.from({ length: n }, (_, k) => ({
      index: p * n + k,
      text: echo(p),
      logprobs: wantLogprobs ? emptyCompletionLogprobs() : null,
      finish_reason: 'stop' as FinishReason,
    })),
  );
  const offsets = choices.map(() => 0);
  for await (const [p, event] of merge(started.map((s) => s.events))) {
    const i = p * n + (event.type === 'delta' || event.type === 'finish' ? event.index : 0);
    if (event.type === 'delta') choices[i].text += event.text;
    if (event.type === 'delta' && event.logprobs && choices[i].logprobs) {
      offsets[i] = appendCompletionLogprobs(choices[i].logprobs!, event.logprobs, offsets[i]);
    }
    if (event.type === 'finish') choices[i].finish_reason = event.reason;
    if (event.type === 'usage') {
      usage.prompt_tokens += event.promptTokens;
      usage.completion_tokens += event.completionTokens;
    }
  }
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  const returned = n > (body.n ?? 1) ? pickBest(choices, n, body.n ?? 1, body.logprobs != null) : choices;
  return jsonResponse({ ...base, choices: returned, usage });
};

type Choice = { index: number; text: string; logprobs: CompletionLogprobs | null; finish_reason: FinishReason };

/** best_of: of each prompt's `generated` candidates keep the `keep` with the highest mean token logprob. */
function pickBest(choices: Choice[], generated: number, keep: number, withLogprobs: boolean): Choice[] {
  const mean = (c: Choice) => {
    const values = c.logprobs?.token_logprobs ?? [];
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
  };
  const out: Choice[] = [];
  for (let p = 0; p * generated < choices.length; p++) {
    const best = choices.slice(p * generated, (p + 1) * generated).sort((a, b) => mean(b) - mean(a)).slice(0, keep);
    best.forEach((c, k) => out.push({ ...c, index: p * keep + k, logprobs: withLogprobs ? c.logprobs : null }));
  }
  return out;
}
