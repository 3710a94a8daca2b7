/**
 * The engine: implements the runtime interface on a Backend and a Tokenizer. It resolves
 * model names, renders templates, checks the context budget, keeps lmdeploy-style sessions
 * and hands jobs to the scheduler.
 * @module
 */
import { l2Normalize } from '../internal/vector.js';
import { contextLengthExceeded, InferenceError, invalidRequest, isInferenceError, notFound } from '../errors.js';
import { groupingChangesLogits, type Backend, type EmbeddingBackend } from './backend.js';
import { BeamJob } from './beam-job.js';
import { ConstraintCache, ConstraintError, type CompiledConstraint } from './constraints/index.js';
import { EmbedJob } from './embed-job.js';
import { EventChannel } from './event-channel.js';
import type { Job, JobContext, JobSpec } from './job.js';
import { MetricsRecorder, type RequestTimer, type RuntimeMetrics } from './metrics.js';
import { SamplingJob } from './sampling-job.js';
import { Scheduler } from './scheduler.js';
import { PrefixCache } from './prefix-cache.js';
import { DraftCosts, type PromptLookupOptions } from './prompt-lookup.js';
import { SessionStore, turnSuffix, type OpenSession } from './sessions.js';
import { renderChat, renderCompletion, type ChatTemplate, type CompletionTemplate } from './templates.js';
import { encodeContinuation, type Tokenizer } from './tokenizer.js';
import type { ToolCallFormat } from './tools/tool-call-parser.js';
import { toolCallConstraint } from './tools/tool-constraint.js';
import { withToolCalls } from './tools/tool-events.js';
import { toolSupportOf } from './tools/tool-prompt.js';
import type {
  ChatMessage, EmbedRequest, EmbedResult, FinishReason, GenerateRequest, GenerationDefaults, GenerationEvent, HostAdvice,
  InferenceRuntime, ModelInfo, PromptInput, RequestField, RuntimeStatus, SamplingParams, ToolDefinition,
} from './types.js';

/** A runtime field name for an error's `param` (handlers map it to their wire name). */
const field = (name: RequestField) => name;

export interface EngineOptions {
  backend: Backend;
  tokenizer: Tokenizer;
  /** Names clients may send for this model; the first is the one listed first. */
  modelNames: string[];
  /**
   * Model ids of the LoRA adapters the backend applies at run time, served beside the base:
   * `adapters[i]` runs with `ForwardItem.adapter` i + 1 (and `hiddenStates(.., i + 1)`).
   */
  adapters?: string[];
  completionTemplate?: CompletionTemplate;
  chatTemplate?: ChatTemplate;
  /** From the model's generation_config.json. */
  generationDefaults?: GenerationDefaults;
  /** Concurrent sequences (lmdeploy's --instance_num). */
  maxConcurrent?: number;
  maxQueue?: number;
  /** Context budget of a /generate session, default the model's context length. */
  sessionLength?: number;
  embedding?: { backend: EmbeddingBackend; tokenizer: Tokenizer; name: string; contextLength: number };
  /** Largest prompt chunk prefilled in one step, so long prompts do not stall other streams (default 512). */
  prefillChunk?: number;
  /** Byte budget for cached KV of finished requests and idle sessions (default 512 MiB; 0 disables reuse). */
  cacheMaxBytes?: number;
  created?: number;
  onError?: (error: unknown) => void;
  /** The host's advice for errors its configuration fixes (CLI flags, createWebRuntime options). */
  advice?: HostAdvice;
  /** Clock for the latency metrics (milliseconds), default performance.now. */
  now?: () => number;
  /**
   * Prompt-lookup speculative decoding for greedy requests (see prompt-lookup.ts): the most draft
   * tokens verified per step (a number), or the full options; 0 or absent: off. The host leaves it
   * off where drafted steps would change greedy output (`lookupRefusal`); the engine itself refuses
   * only a backend that is neither batch-invariant nor row-invariant.
   */
  promptLookup?: number | PromptLookupOptions;
}

/** Texts at least this long are tokenized with `encodeAsync` when the tokenizer has it (off the event loop). */
const ASYNC_ENCODE_CHARS = 4096;
/** Most stop token ids a request may name. */
export const MAX_STOP_TOKEN_IDS = 256;

const cancelled = () => new InferenceError(499, 'The request was cancelled.', { code: 'cancelled' });

const BASE_SAMPLING: SamplingParams = {
  temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, presencePenalty: 0, frequencyPenalty: 0,
  numBeams: 1, lengthPenalty: 1,
};

/**
 * The platform-neutral engine (scheduler, sampling, sessions, prefix cache) on any Backend: what
 * createNodeRuntime and createWebRuntime build for you; call it yourself to run another backend.
 * @example
 * import { createApp, createEngine } from 'edgellm';
 * const runtime = createEngine({ backend: myBackend, tokenizer: myTokenizer, modelNames: ['my-model'] });
 * const app = createApp({ runtime });
 */
export function createEngine(options: EngineOptions): InferenceRuntime {
  return new Engine(options);
}

/** `emit` itself, or wrapped to split tool calls out of the text when the request has tools. */
function withToolsParsed(format: ToolCallFormat | undefined, emit: (event: GenerationEvent) => void): (event: GenerationEvent) => void {
  return format ? withToolCalls(format, emit) : emit;
}

class Engine implements InferenceRuntime {
  readonly specificationVersion = 'v1' as const;
  private state: RuntimeStatus = 'ready';
  private nextSeq = 1;
  private readonly scheduler: Scheduler;
  private readonly sessions = new SessionStore();
  private readonly cache: PrefixCache | undefined;
  private readonly created: number;
  private readonly contextLength: number;
  private readonly recorder: MetricsRecorder;
  /** KV tokens each running job holds (prompt per copy plus generated), for the KV gauge. */
  private readonly activeTokens = new Map<Job, number>();
  private constraints: ConstraintCache | undefined;
  private readonly lookup: PromptLookupOptions | undefined;
  private readonly draftCosts = new DraftCosts();

  constructor(private readonly o: EngineOptions) {
    const lookup = typeof o.promptLookup === 'number' ? { maxDraft: o.promptLookup } : o.promptLookup;
    // Never where activations are quantized per call: a drafted step's positions would change each other.
    this.lookup = lookup && lookup.maxDraft > 0 && !groupingChangesLogits(o.backend.info) ? lookup : undefined;
    this.recorder = new MetricsRecorder(o.now);
    this.created = o.created ?? Math.floor(Date.now() / 1000);
    this.contextLength = o.backend.info.contextLength;
    const names = [...o.modelNames, ...(o.adapters ?? []), ...(o.embedding ? [o.embedding.name] : [])];
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) throw new Error(`The model id "${twice}" is given twice (model names, LoRA adapters and the embedding model need distinct ids).`);
    const bytesPerToken = o.backend.info.kvBytesPerToken ?? 0;
    const budget = o.cacheMaxBytes ?? 512 * 1024 * 1024;
    const forwarded = o.backend.info.quantizedActivations ? 2 : 1;
    this.cache = bytesPerToken > 0 && budget > 0 ? new PrefixCache((seq) => o.backend.release(seq), budget, bytesPerToken, forwarded) : undefined;
    this.scheduler = new Scheduler(o.backend, {
      maxConcurrent: o.maxConcurrent ?? 8,
      maxQueue: o.maxQueue ?? 256,
      onError: o.onError,
    });
  }

  status(): RuntimeStatus {
    if (this.state === 'ready' && this.o.backend.failure) return 'failed';
    return this.state;
  }

  metrics(): RuntimeMetrics {
    const r = this.recorder;
    const bytesPerToken = this.o.backend.info.kvBytesPerToken ?? 0;
    let active = 0;
    for (const tokens of this.activeTokens.values()) active += tokens;
    const kept = this.cache?.bytes ?? 0;
    const { running, waiting } = this.scheduler.load;
    return {
      model: this.o.modelNames[0],
      requestsRunning: running,
      requestsWaiting: waiting,
      promptTokens: r.promptTokens,
      generationTokens: r.generationTokens,
      requestsFinished: { ...r.requestsFinished },
      requestsRejected: r.requestsRejected,
      prefixCacheQueries: r.prefixCacheQueries,
      prefixCacheHits: r.prefixCacheHits,
      kvCacheBytes: active * bytesPerToken + kept,
      kvCacheKeptBytes: kept,
      kvCacheBudgetBytes: this.cache ? (this.o.cacheMaxBytes ?? 512 * 1024 * 1024) : 0,
      sessionsOpen: this.sessions.size,
      timeToFirstToken: r.ttft.snapshot(),
      interTokenLatency: r.itl.snapshot(),
      e2eRequestLatency: r.e2e.snapshot(),
      queueTime: r.queue.snapshot(),
      ...(this.lookup && { specDecode: { drafts: r.drafts, draftTokens: r.draftTokens, acceptedTokens: r.acceptedTokens } }),
    };
  }

  models(): ModelInfo[] {
    const base = { created: this.created, ownedBy: 'edgellm' };
    const generation = { ...base, kind: 'generation' as const, contextLength: this.contextLength, embeddingSize: this.o.backend.info.hiddenSize };
    const models: ModelInfo[] = this.o.modelNames.map((id) => ({ ...generation, id }));
    for (const id of this.o.adapters ?? []) models.push({ ...generation, id, parent: this.o.modelNames[0] });
    const e = this.o.embedding;
    if (e) models.push({ ...base, id: e.name, kind: 'embedding', contextLength: e.contextLength, embeddingSize: e.backend.dimensions });
    return models;
  }

  async tokenize(model: string | undefined, input: PromptInput, template: GenerateRequest['template'] = 'none') {
    this.generationModel(model);
    this.checkPromptSize(input, this.contextLength);
    return (await this.largePromptTokens(input, template)) ?? this.promptTokens(input, template);
  }

  generate(request: GenerateRequest): AsyncIterable<GenerationEvent> {
    let job: Job | undefined;
    let abandoned = false;
    const channel = new EventChannel<GenerationEvent>(() => {
      abandoned = true;
      job?.cancel();
    });
    const started = (created: Job) => {
      job = created;
      if (abandoned) created.cancel();
    };
    try {
      // Every failure, even an unknown model, rejects the stream's first read instead of throwing here.
      this.ensureOpen();
      this.generationModel(request.model);
      // Bound the work before doing any: a prompt longer than any context could hold is refused untokenized.
      if (!request.session) this.checkPromptSize(request.input, this.contextLength);
      const pending = request.session ? undefined : this.largePromptTokens(request.input, request.template, request.tools?.definitions);
      if (pending) {
        pending.then((tokens) => started(this.startJob(request, channel, tokens))).catch((error) => channel.close(error));
      } else {
        started(this.startJob(request, channel));
      }
    } catch (error) {
      channel.close(error);
    }
    return channel;
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    this.ensureOpen();
    const e = this.o.embedding;
    const useEmbeddingModel = e !== undefined && (request.model === undefined || request.model === e.name);
    const name = useEmbeddingModel ? e.name : this.generationModel(request.model);
    const adapter = useEmbeddingModel ? 0 : this.adapterOf(request.model);
    if (!useEmbeddingModel && this.o.backend.info.hiddenStates === false) {
      const advice = this.o.advice?.noEmbeddingModel;
      throw invalidRequest(
        `The model \`${name}\` has no hidden state to embed (its graph does not show one); /v1/embeddings needs an embedding model.` + (advice ? ` ${advice}` : ''),
        field('model'),
        'model_not_supported',
      );
    }
    const tokenizer = useEmbeddingModel ? e.tokenizer : this.o.tokenizer;
    const limit = useEmbeddingModel ? e.contextLength : this.contextLength;
    const maxChars = tokenizer.maxTokenChars ? limit * tokenizer.maxTokenChars : Number.POSITIVE_INFINITY;
    const tooLong = (i: number, what: string) =>
      invalidRequest(`input[${i}] has ${what}; this model takes at most ${limit} tokens.`, field('input'), 'context_length_exceeded');
    // Every size is checked before any text is tokenized.
    request.input.forEach((item, i) => {
      if (item.length === 0) throw invalidRequest(`input[${i}] is empty.`, field('input'));
      if (typeof item === 'string' && item.length > maxChars) throw tooLong(i, `${item.length} characters (more than ${maxChars} cannot fit)`);
      if (typeof item !== 'string' && item.length > limit) throw tooLong(i, `${item.length} tokens`);
    });
    // The embedding model takes the ids of its own tokenizer (the graph has no row for others).
    const vocab = useEmbeddingModel ? e.tokenizer.tokenBytes?.().length : this.o.backend.info.vocabSize;
    const inputs: number[][] = [];
    // Many short inputs stall the event loop as much as one long one: past the same total, all go off it.
    // Otherwise they are encoded in place, so a small request reaches the queue in the order it came.
    const chars = request.input.reduce((n, item) => n + (typeof item === 'string' ? item.length : 0), 0);
    const offLoop = chars >= ASYNC_ENCODE_CHARS && tokenizer.encodeAsync !== undefined;
    for (const [i, item] of request.input.entries()) {
      const encoded =
        typeof item !== 'string' ? item : offLoop ? tokenizer.encodeAsync!(item, true) : tokenizer.encode(item, true);
      const tokens = Array.isArray(encoded) ? encoded : await encoded;
      if (request.signal?.aborted) throw cancelled();
      const bad = outOfVocabulary(tokens, vocab);
      if (bad !== undefined) {
        throw invalidRequest(`input[${i}] has token id ${bad}, outside the vocabulary of ${name} (0..${vocab! - 1}).`, field('input'));
      }
      if (tokens.length > limit) throw tooLong(i, `${tokens.length} tokens`);
      inputs.push(tokens);
    }
    // Through the scheduler: queued (or 429) like a generation, a few inputs per step, cancelled with the request.
    const run = useEmbeddingModel
      ? (batch: number[][]) => e.backend.embed(batch)
      : async (batch: number[][]) => (await (adapter ? this.o.backend.hiddenStates(batch, adapter) : this.o.backend.hiddenStates(batch))).map(l2Normalize);
    const job = new EmbedJob(inputs, run, this.o.prefillChunk ?? 512);
    this.scheduler.submit({ job, fail: (error) => job.fail(error) });
    request.signal?.addEventListener('abort', () => job.cancel(), { once: true });
    if (request.signal?.aborted) job.cancel();
    const embeddings = await job.result;
    return { model: name, embeddings, promptTokens: inputs.reduce((n, t) => n + t.length, 0) };
  }

  async close(): Promise<void> {
    this.state = 'closed';
    this.cache?.clear();
    await this.o.backend.dispose();
    await this.o.embedding?.backend.dispose();
  }

  private ensureOpen(): void {
    if (this.state !== 'ready') throw new InferenceError(503, 'The server is shutting down.');
    const failure = this.o.backend.failure;
    if (failure) throw new InferenceError(503, `The inference backend has stopped: ${failure.message}`, { code: 'backend_failed' });
  }

  /** Resolves a requested model name to a generation model, or throws 404/400. */
  private generationModel(model: string | undefined): string {
    if (model === undefined || model === '' || this.o.modelNames.includes(model)) return model || this.o.modelNames[0];
    if (this.o.adapters?.includes(model)) return model;
    if (model === this.o.embedding?.name) {
      throw invalidRequest(`The model \`${model}\` is an embedding model; use /v1/embeddings.`, field('model'), 'model_not_supported');
    }
    const advice = this.o.advice?.unknownModel;
    throw notFound(
      `The model \`${model}\` does not exist. This server serves: ${this.models().map((m) => m.id).join(', ')}.` + (advice ? ` ${advice}` : ''),
      field('model'),
      'model_not_found',
    );
  }

  /** The LoRA adapter index a (resolved) model name runs with: 0 for the base model's names. */
  private adapterOf(model: string | undefined): number {
    return model ? (this.o.adapters?.indexOf(model) ?? -1) + 1 : 0;
  }

  /**
   * Refuses a prompt that cannot fit before tokenizing it: no token of this vocabulary covers more
   * than `maxTokenChars` characters, so longer text has more than `limit` tokens.
   */
  private checkPromptSize(input: PromptInput, limit: number): void {
    const param = field('input');
    if (input.kind === 'tokens') return; // already in memory; the context check follows
    const perToken = this.o.tokenizer.maxTokenChars;
    if (!perToken) return;
    const chars = input.kind === 'text' ? input.text.length : input.messages.reduce((n, m) => n + m.content.length, 0);
    if (chars > limit * perToken) {
      throw new InferenceError(
        400,
        `This model's maximum context length is ${limit} tokens, and the prompt has ${chars} characters: ` +
          `more than ${limit * perToken} cannot fit in it with this tokenizer. Please reduce the prompt.`,
        { param, code: 'context_length_exceeded' },
      );
    }
  }

  /** The prompt's tokens through `encodeAsync` when it is long enough to stall the event loop; undefined otherwise. */
  private largePromptTokens(input: PromptInput, template: GenerateRequest['template'], tools?: ToolDefinition[]): Promise<number[]> | undefined {
    if (input.kind === 'tokens' || !this.o.tokenizer.encodeAsync) return undefined;
    const chars = input.kind === 'text' ? input.text.length : input.messages.reduce((n, m) => n + m.content.length, 0);
    if (chars < ASYNC_ENCODE_CHARS) return undefined;
    const rendered = this.rendered(input, template, tools);
    return this.o.tokenizer.encodeAsync(rendered.text, rendered.addSpecialTokens);
  }

  private rendered(input: Exclude<PromptInput, { kind: 'tokens' }>, template: GenerateRequest['template'], tools?: ToolDefinition[]) {
    return input.kind === 'messages'
      ? this.renderChat(input.messages, tools)
      : template === 'completion'
        ? renderCompletion(this.o.completionTemplate ?? 'raw', input.text)
        : { text: input.text, addSpecialTokens: input.addSpecialTokens ?? true };
  }

  private promptTokens(input: PromptInput, template: GenerateRequest['template'], tools?: ToolDefinition[]): number[] {
    if (input.kind === 'tokens') return input.tokens;
    const rendered = this.rendered(input, template, tools);
    return this.o.tokenizer.encode(rendered.text, rendered.addSpecialTokens);
  }

  /**
   * A session turn's tokens: the previous turn's context with only this turn's new text appended
   * (lmdeploy's behaviour), or the whole conversation rendered and tokenized when there is no
   * context to continue.
   */
  private sessionPrompt(session: OpenSession): { text: string; tokens: number[] } {
    const { text, addSpecialTokens } = this.renderChat(session.messages);
    const previous = session.context;
    const suffix = previous && turnSuffix(previous, text);
    if (previous && suffix !== undefined) return { text, tokens: [...previous.tokens, ...encodeContinuation(this.o.tokenizer, suffix)] };
    return { text, tokens: this.o.tokenizer.encode(text, addSpecialTokens) };
  }

  private renderChat(messages: ChatMessage[], tools?: ToolDefinition[]) {
    try {
      return renderChat(this.o.chatTemplate ?? 'model', messages, this.o.tokenizer, tools);
    } catch (error) {
      const advice = this.o.advice?.noChatTemplate;
      if (!advice || !isInferenceError(error) || error.code !== 'chat_template_missing') throw error;
      throw new InferenceError(error.status, `${error.message} ${advice}`, { param: error.param, code: error.code });
    }
  }

  private sampling(request: GenerateRequest): SamplingParams {
    const g = this.o.generationDefaults ?? {};
    const modelDefaults = Object.fromEntries(Object.entries(g).filter(([, v]) => v !== undefined));
    const given = Object.fromEntries(Object.entries(request.sampling).filter(([, v]) => v !== undefined));
    return { ...BASE_SAMPLING, ...request.defaults, ...modelDefaults, ...given };
  }

  private startJob(request: GenerateRequest, channel: EventChannel<GenerationEvent>, tokens?: number[]): Job {
    this.ensureOpen();
    const session = request.session ? this.sessions.open(request.session, request.input) : undefined;
    try {
      return this.createJob(request, channel, session, tokens);
    } catch (error) {
      session?.release();
      throw error;
    }
  }

  private createJob(request: GenerateRequest, channel: EventChannel<GenerationEvent>, session?: OpenSession, tokens?: number[]): Job {
    if (session) this.checkPromptSize(request.input, Math.min(this.o.sessionLength ?? this.contextLength, this.contextLength));
    const turn = session && this.sessionPrompt(session);
    const tools = request.tools && request.tools.choice !== 'none' ? request.tools : undefined;
    const promptTokens = turn ? turn.tokens : (tokens ?? this.promptTokens(request.input, request.template, request.tools?.definitions));
    const limit = session ? Math.min(this.o.sessionLength ?? this.contextLength, this.contextLength) : this.contextLength;
    if (promptTokens.length === 0) throw invalidRequest('The prompt is empty.', field('input'));
    // A job with no choices would throw in the scheduler loop and wedge every other request.
    if (!Number.isInteger(request.n) || request.n < 1) throw invalidRequest('n must be a positive integer.', field('n'));
    const sampling = this.sampling(request);
    if (sampling.numBeams > 1 && request.n > 1) throw invalidRequest('n > 1 cannot be combined with beam search.', field('n'));
    if (sampling.numBeams > 1 && request.logprobs !== undefined) {
      throw invalidRequest('logprobs cannot be combined with beam search.', field('logprobs'));
    }
    if (request.logprobs !== undefined && (!Number.isInteger(request.logprobs) || request.logprobs < 0 || request.logprobs > 20)) {
      throw invalidRequest('logprobs must be an integer from 0 to 20.', field('logprobs'));
    }
    this.checkVocabulary(promptTokens, sampling);
    this.checkStopTokenIds(request.stopTokenIds);

    const room = limit - promptTokens.length;
    if (!session && room <= 0) throw contextLengthExceeded(promptTokens.length, request.maxTokens ?? 1, limit, field('input'));
    if (!session && request.maxTokens !== undefined && request.maxTokens > room) {
      throw contextLengthExceeded(promptTokens.length, request.maxTokens, limit, field('maxTokens'));
    }
    const spec: JobSpec = {
      promptTokens,
      sampling,
      maxNewTokens: Math.min(request.maxTokens ?? Number.POSITIVE_INFINITY, Math.max(room, 0)),
      minTokens: request.minTokens ?? 0,
      stop: request.stop,
      stopTokenIds: request.stopTokenIds ?? [],
      ignoreEos: request.ignoreEos,
      n: request.n,
      logprobs: request.logprobs,
      prefillChunk: this.o.prefillChunk ?? 512,
      constraint: this.compileConstraint(this.constraintOf(request, tools)),
      lookup: this.lookup,
    };
    spec.adapter = this.adapterOf(request.model);
    spec.reuse = this.reusePrefix(promptTokens, request.session, spec.adapter);
    const cache = this.cache;
    const cachedTokens = spec.reuse?.cached ?? 0;
    const timer: RequestTimer = this.recorder.start(promptTokens.length, cachedTokens, cache !== undefined);
    let finishReason: FinishReason = 'stop';
    const ctx: JobContext = {
      backend: this.o.backend,
      tokenizer: this.o.tokenizer,
      allocSeq: () => this.nextSeq++,
      emit: withToolsParsed(tools && this.toolCallFormat(), (event) => {
        if (event.type === 'delta') {
          timer.tokens(event.index, event.tokens.length);
          this.activeTokens.set(job, (this.activeTokens.get(job) ?? 0) + event.tokens.length);
        } else if (event.type === 'finish' && event.index === 0) finishReason = event.reason;
        else if (event.type === 'usage') timer.end(finishReason);
        channel.push(event);
        if (event.type === 'usage') channel.close();
      }),
      onComplete:
        session && turn
          ? (reply, _reason, tokens) => session.commit(reply, tokens && { promptText: turn.text, tokens: [...promptTokens, ...tokens] })
          : undefined,
      onDraft: (drafted, accepted) => this.recorder.draft(drafted, accepted),
      draftCosts: this.draftCosts,
      now: this.o.now ?? (() => performance.now()),
      onRetain:
        cache && !request.session?.end
          ? (seq, tokens) => {
              cache.insert(seq, tokens, request.session?.id, spec.adapter);
              return true;
            }
          : undefined,
      // A cancelled or failed job ends its stream too, so no reader waits forever.
      onDispose: () => {
        timer.end(job.cancelled ? 'abort' : 'error');
        this.activeTokens.delete(job);
        session?.release();
        channel.close();
      },
    };
    const job = sampling.numBeams > 1 ? new BeamJob(spec, ctx) : new SamplingJob(spec, ctx);
    this.activeTokens.set(job, promptTokens.length * Math.max(request.n, sampling.numBeams));
    const start: GenerationEvent = {
      type: 'start', promptTokens: promptTokens.length, promptText: this.o.tokenizer.decode(promptTokens), cachedTokens,
    };

    // A session whose history fills its context answers at once with finish_reason "length" (lmdeploy).
    if (spec.maxNewTokens <= 0) {
      channel.push(start);
      ctx.emit({ type: 'finish', index: 0, reason: 'length' });
      ctx.emit({ type: 'usage', promptTokens: promptTokens.length, completionTokens: 0 });
      job.dispose();
      return job;
    }
    try {
      this.scheduler.submit({
        job,
        onRun: () => timer.scheduled(),
        fail: (error) => {
          timer.end('error');
          channel.close(error);
        },
      });
    } catch (error) {
      timer.reject(); // refused before it started: no request, no latency, no tokens
      channel.close(error); // first: disposing ends the stream, and the error must be what it ends with
      job.dispose();
      throw error;
    }
    channel.push(start);
    // After `start`, so that a request whose client is already gone still reads as started, then ends.
    request.signal?.addEventListener('abort', () => job.cancel(), { once: true });
    if (request.signal?.aborted) job.cancel();
    return job;
  }

  /**
   * The cached sequence to start from, if one shares a prefix with the prompt. A session's own
   * entry is taken over; any other is forked (backend calls take effect in order, so the copy
   * exists before the prefill runs).
   */
  private reusePrefix(tokens: number[], session: GenerateRequest['session'], adapter: number): JobSpec['reuse'] {
    if (!this.cache) return undefined;
    if (session?.start) this.cache.drop(session.id); // a new conversation; `end` still reuses, then forgets
    // Only KV computed under the same LoRA adapter (or the base) is reused.
    const hit = this.cache.lookup(tokens, session?.id, adapter);
    if (!hit) return undefined;
    const reuse = { cached: hit.length, kvLength: hit.entry.tokens.length };
    if (session && hit.entry.owner === session.id) {
      this.cache.take(hit.entry);
      return { seq: hit.entry.seq, ...reuse };
    }
    // A model whose logits depend on how tokens are grouped into calls: a prefix computed for
    // another request would change this one's reply.
    if (groupingChangesLogits(this.o.backend.info)) return undefined;
    const seq = this.nextSeq++;
    this.o.backend.fork(hit.entry.seq, seq).catch(() => {}); // a failure surfaces at the prefill
    return { seq, ...reuse };
  }

  /** How this model writes tool calls: its template's format, else the default prompt's (Hermes). */
  private toolCallFormat(): ToolCallFormat {
    return this.o.chatTemplate === undefined || this.o.chatTemplate === 'model' ? toolSupportOf(this.o.tokenizer.chatTemplate).format : 'hermes';
  }

  /**
   * The request's own constraint, or the one its tool_choice demands ("required" or a named
   * function: the reply must be a valid call). Both at once is a client mistake.
   */
  private constraintOf(request: GenerateRequest, tools: GenerateRequest['tools']): GenerateRequest['constraint'] {
    const spec = tools && toolCallConstraint(tools, this.toolCallFormat());
    if (!spec) return request.constraint;
    if (request.constraint) {
      throw invalidRequest('A structured output format cannot be combined with a tool_choice that requires a call.', request.constraint.param ?? 'constraint');
    }
    return { spec, param: 'tools' };
  }

  /** A request's constraint, compiled once per spec (cached); a spec the server cannot enforce is a 400. */
  private compileConstraint(constraint: GenerateRequest['constraint']): CompiledConstraint | undefined {
    if (!constraint) return undefined;
    const param = constraint.param ?? 'constraint';
    const tokenizer = this.o.tokenizer;
    if (!tokenizer.tokenBytes) {
      throw invalidRequest(`${param}: this model's tokenizer does not expose token bytes, so output cannot be constrained.`, param);
    }
    this.constraints ??= new ConstraintCache(() => tokenizer.tokenBytes!(), this.o.backend.info.vocabSize);
    try {
      return this.constraints.get(constraint.spec);
    } catch (error) {
      if (error instanceof ConstraintError) throw invalidRequest(`${param}: ${error.message}`, param, 'invalid_constraint');
      throw error;
    }
  }

  private checkStopTokenIds(ids: number[] | undefined): void {
    if (!ids) return;
    if (ids.length > MAX_STOP_TOKEN_IDS) {
      throw invalidRequest(`The stop token ids are ${ids.length}; at most ${MAX_STOP_TOKEN_IDS} are allowed.`, field('stopTokenIds'));
    }
    const vocab = this.o.backend.info.vocabSize;
    const bad = outOfVocabulary(ids, vocab);
    if (bad !== undefined) throw invalidRequest(`The stop token ids name token ${bad}, outside the vocabulary (0..${vocab - 1}).`, field('stopTokenIds'));
  }

  private checkVocabulary(tokens: number[], sampling: SamplingParams): void {
    const vocab = this.o.backend.info.vocabSize;
    const bad = outOfVocabulary(tokens, vocab);
    if (bad !== undefined) throw invalidRequest(`Token id ${bad} is outside the vocabulary (0..${vocab - 1}).`, field('input'));
    for (const key of Object.keys(sampling.logitBias ?? {})) {
      if (!Number.isInteger(Number(key)) || Number(key) < 0 || Number(key) >= vocab) throw invalidRequest(`The logit bias names token ${key}, outside the vocabulary.`, field('logitBias'));
    }
  }
}

/** The first token id without a row in a vocabulary of `vocab` ids, if any (none known: none checked). */
function outOfVocabulary(tokens: number[], vocab: number | undefined): number | undefined {
  return vocab === undefined ? undefined : tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
}
