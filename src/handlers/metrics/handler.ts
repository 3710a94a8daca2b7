/**
 * GET /metrics: the runtime's counters (plain numbers) and the app's HTTP counters as Prometheus
 * text. Names follow vLLM's (`vllm:` becomes `edgellm:`), so its dashboards need little change.
 * @module
 */
import type { RuntimeMetrics } from '../../runtime/metrics.js';
import type { Handler, HttpCount } from '../context.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, type MetricFamily } from './prometheus-text.js';

export const handleMetrics: Handler = async (_request, ctx) => {
  const runtime = ctx.runtime.metrics?.();
  const families = [...(runtime ? runtimeFamilies(runtime) : []), ...httpFamilies(ctx.httpCounts?.() ?? [])];
  return new Response(renderPrometheus(families), { headers: { 'content-type': PROMETHEUS_CONTENT_TYPE } });
};

/**
 * One server serves one generation model, so the model is named once, in an info metric, rather
 * than as a label on every series (join on instance when several replicas serve several models).
 */
export function runtimeFamilies(m: RuntimeMetrics): MetricFamily[] {
  const one = (value: number) => [{ value }];
  return [
    { name: 'edgellm:model_info', type: 'gauge', help: 'The model this server generates with (always 1).', samples: [{ labels: { model_name: m.model }, value: 1 }] },
    { name: 'edgellm:num_requests_running', type: 'gauge', help: 'Requests in the running batch.', samples: one(m.requestsRunning) },
    { name: 'edgellm:num_requests_waiting', type: 'gauge', help: 'Requests waiting for a slot.', samples: one(m.requestsWaiting) },
    { name: 'edgellm:prompt_tokens_total', type: 'counter', help: 'Prompt tokens of accepted requests, cached ones included.', samples: one(m.promptTokens) },
    { name: 'edgellm:generation_tokens_total', type: 'counter', help: 'Generated tokens, every choice.', samples: one(m.generationTokens) },
    {
      name: 'edgellm:request_success_total',
      type: 'counter',
      help: 'Requests that ended, by finish reason (abort: the client went away).',
      // Every outcome the runtime counts but errors (their own counter): a new finish reason shows up by itself.
      samples: Object.entries(m.requestsFinished)
        .filter(([reason]) => reason !== 'error')
        .map(([reason, value]) => ({ labels: { finished_reason: reason }, value })),
    },
    { name: 'edgellm:request_errors_total', type: 'counter', help: 'Requests that failed in the engine (500).', samples: one(m.requestsFinished.error) },
    {
      name: 'edgellm:request_rejected_total',
      type: 'counter',
      help: 'Requests refused with 429 because the queue was full.',
      samples: [{ labels: { reason: 'queue_full' }, value: m.requestsRejected }],
    },
    { name: 'edgellm:prefix_cache_queries_total', type: 'counter', help: 'Prompt tokens looked up in the prefix cache.', samples: one(m.prefixCacheQueries) },
    { name: 'edgellm:prefix_cache_hits_total', type: 'counter', help: 'Prompt tokens found in kept KV (not computed again).', samples: one(m.prefixCacheHits) },
    { name: 'edgellm:kv_cache_bytes', type: 'gauge', help: 'KV cache bytes held: running sequences, kept prefixes and idle sessions.', samples: one(m.kvCacheBytes) },
    { name: 'edgellm:kv_cache_kept_bytes', type: 'gauge', help: 'KV cache bytes kept for reuse (prefixes, idle sessions).', samples: one(m.kvCacheKeptBytes) },
    { name: 'edgellm:kv_cache_budget_bytes', type: 'gauge', help: 'Budget of kept KV (--cache-max-bytes).', samples: one(m.kvCacheBudgetBytes) },
    { name: 'edgellm:sessions_open', type: 'gauge', help: '/generate sessions held by this server.', samples: one(m.sessionsOpen) },
    {
      name: 'edgellm:wasm_memory_bytes',
      type: 'gauge',
      help: "onnxruntime-web's wasm memory (Workers: counts against the isolate's 128 MB).",
      samples: m.wasmMemoryBytes === undefined ? [] : one(m.wasmMemoryBytes),
    },
    ...specDecodeFamilies(m.specDecode),
    { name: 'edgellm:time_to_first_token_seconds', type: 'histogram', help: 'From accepting a request to its first token.', samples: [{ value: m.timeToFirstToken }] },
    { name: 'edgellm:inter_token_latency_seconds', type: 'histogram', help: 'Between consecutive tokens of one choice.', samples: [{ value: m.interTokenLatency }] },
    { name: 'edgellm:e2e_request_latency_seconds', type: 'histogram', help: 'From accepting a request to its end.', samples: [{ value: m.e2eRequestLatency }] },
    { name: 'edgellm:request_queue_time_seconds', type: 'histogram', help: 'Time waiting for a slot in the batch.', samples: [{ value: m.queueTime }] },
  ];
}

/** vLLM's speculative-decoding counters, present when prompt lookup is on. */
function specDecodeFamilies(spec: RuntimeMetrics['specDecode']): MetricFamily[] {
  if (!spec) return [];
  return [
    { name: 'edgellm:spec_decode_num_drafts_total', type: 'counter', help: 'Prompt-lookup drafts verified.', samples: [{ value: spec.drafts }] },
    { name: 'edgellm:spec_decode_num_draft_tokens_total', type: 'counter', help: 'Draft tokens verified.', samples: [{ value: spec.draftTokens }] },
    {
      name: 'edgellm:spec_decode_num_accepted_tokens_total',
      type: 'counter',
      help: 'Draft tokens accepted (equal to the greedy choice).',
      samples: [{ value: spec.acceptedTokens }],
    },
  ];
}

function httpFamilies(counts: HttpCount[]): MetricFamily[] {
  return [
    {
      name: 'edgellm:http_requests_total',
      type: 'counter',
      help: 'HTTP responses by route and status (429s from every source included).',
      samples: counts.map((c) => ({ labels: { method: c.method, route: c.route, status: String(c.status) }, value: c.count })),
    },
  ];
}
