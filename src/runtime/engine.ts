/**
 * The engine: implements the runtime interface on a Backend and a Tokenizer. It resolves
 * model names, renders templates, checks the context budget, keeps lmdeploy-style sessions
 * and hands jobs to the scheduler.
 * @module
 */
import { l2Normalize } from '../internal/vector.js';
import { contextLengthExceeded, InferenceError, invalidRequest, notFound } from '../errors.js';
import type { Backend, EmbeddingBackend } from './backend.js';
import { BeamJob } from './beam-job.js';
import { EventChannel } from './event-channel.js';
import type { Job, JobContext, JobSpec } from './job.js';
import { SamplingJob } from './sampling-job.js';
import { Scheduler } from './scheduler.js';
import { PrefixCache } from './prefix-cache.js';
import { SessionStore, turnSuffix, type OpenSession } from './sessions.js';
import { renderChat, renderCompletion, type ChatTemplate, type CompletionTemplate } from './templates.js';
import { encodeContinuation, type Tokenizer } from './tokenizer.js';
import type {
  EmbedRequest, EmbedResult, GenerateRequest, GenerationDefaults, GenerationEvent, InferenceRuntime, ModelInfo,
  PromptInput, RuntimeStatus, SamplingParams,
} from './types.js';

export interface EngineOptions {
  backend: Backend;
  tokenizer: Tokenizer;
  /** Names clients may send for this model; the first is the one listed first. */
  modelNames: string[];
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
}

const BASE_SAMPLING: SamplingParams = {
  temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, presencePenalty: 0, frequencyPenalty: 0,
  numBeams: 1, lengthPenalty: 1,
};

export function createEngine(options: EngineOptions): InferenceRuntime {
  return new Engine(options);
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

  constructor(private readonly o: EngineOptions) {
    this.created = o.created ?? Math.floor(Date.now() / 1000);
    this.contextLength = o.backend.info.contextLength;
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
    return this.state;
  }

  models(): ModelInfo[] {
    const base = { created: this.created, ownedBy: 'edgellm' };
    const models: ModelInfo[] = this.o.modelNames.map((id) => ({
      ...base, id, kind: 'generation', contextLength: this.contextLength, embeddingSize: this.o.backend.info.hiddenSize,
    }));
    const e = this.o.embedding;
    if (e) models.push({ ...base, id: e.name, kind: 'embedding', contextLength: e.contextLength, embeddingSize: e.backend.dimensions });
    return models;
  }

  async tokenize(model: string | undefined, input: PromptInput, template: GenerateRequest['template'] = 'none') {
    this.generationModel(model);
    return this.promptTokens(input, template);
  }

  generate(request: GenerateRequest): AsyncIterable<GenerationEvent> {
    let job: Job | undefined;
    const channel = new EventChannel<GenerationEvent>(() => job?.cancel());
    try {
      // Every failure, even an unknown model, rejects the stream's first read instead of throwing here.
      this.ensureOpen();
      this.generationModel(request.model);
      job = this.startJob(request, channel);
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
    const tokenizer = useEmbeddingModel ? e.tokenizer : this.o.tokenizer;
    const limit = useEmbeddingModel ? e.contextLength : this.contextLength;
    const inputs = request.input.map((item, i) => {
      if (item.length === 0) throw invalidRequest(`input[${i}] is empty.`, 'input');
      const tokens = typeof item === 'string' ? tokenizer.encode(item, true) : item;
      if (!useEmbeddingModel && this.outOfVocabulary(tokens) !== undefined) {
        throw invalidRequest(`input[${i}] has a token id outside the vocabulary (0..${this.o.backend.info.vocabSize - 1}).`, 'input');
      }
      if (tokens.length > limit) {
        throw invalidRequest(`input[${i}] has ${tokens.length} tokens; this model takes at most ${limit}.`, 'input', 'context_length_exceeded');
      }
      return tokens;
    });
    const embeddings = useEmbeddingModel ? await e.backend.embed(inputs) : (await this.o.backend.hiddenStates(inputs)).map(l2Normalize);
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
  }

  /** Resolves a requested model name to a generation model, or throws 404/400. */
  private generationModel(model: string | undefined): string {
    if (model === undefined || model === '' || this.o.modelNames.includes(model)) return model || this.o.modelNames[0];
    if (model === this.o.embedding?.name) {
      throw invalidRequest(`The model \`${model}\` is an embedding model; use /v1/embeddings.`, 'model', 'model_not_supported');
    }
    throw notFound(
      `The model \`${model}\` does not exist. This server serves: ${this.models().map((m) => m.id).join(', ')}. ` +
        '(Use --model-name to serve a model under another name.)',
      'model',
      'model_not_found',
    );
  }

  private promptTokens(input: PromptInput, template: GenerateRequest['template']): number[] {
    if (input.kind === 'tokens') return input.tokens;
    const rendered =
      input.kind === 'messages'
        ? renderChat(this.o.chatTemplate ?? 'model', input.messages, this.o.tokenizer)
        : template === 'completion'
          ? renderCompletion(this.o.completionTemplate ?? 'raw', input.text)
          : { text: input.text, addSpecialTokens: true };
    return this.o.tokenizer.encode(rendered.text, rendered.addSpecialTokens);
  }

  /**
   * A session turn's tokens: the previous turn's context with only this turn's new text appended
   * (lmdeploy's behaviour), or the whole conversation rendered and tokenized when there is no
   * context to continue.
   */
  private sessionPrompt(session: OpenSession): { text: string; tokens: number[] } {
    const { text, addSpecialTokens } = renderChat(this.o.chatTemplate ?? 'model', session.messages, this.o.tokenizer);
    const previous = session.context;
    const suffix = previous && turnSuffix(previous, text);
    if (previous && suffix !== undefined) return { text, tokens: [...previous.tokens, ...encodeContinuation(this.o.tokenizer, suffix)] };
    return { text, tokens: this.o.tokenizer.encode(text, addSpecialTokens) };
  }

  private sampling(request: GenerateRequest): SamplingParams {
    const g = this.o.generationDefaults ?? {};
    const modelDefaults = Object.fromEntries(Object.entries(g).filter(([, v]) => v !== undefined));
    const given = Object.fromEntries(Object.entries(request.sampling).filter(([, v]) => v !== undefined));
    return { ...BASE_SAMPLING, ...request.defaults, ...modelDefaults, ...given };
  }

  private startJob(request: GenerateRequest, channel: EventChannel<GenerationEvent>): Job {
    const session = request.session ? this.sessions.open(request.session, request.input) : undefined;
    try {
      return this.createJob(request, channel, session);
    } catch (error) {
      session?.release();
      throw error;
    }
  }

  private createJob(request: GenerateRequest, channel: EventChannel<GenerationEvent>, session?: OpenSession): Job {
    const turn = session && this.sessionPrompt(session);
    const promptTokens = turn ? turn.tokens : this.promptTokens(request.input, request.template);
    const limit = session ? Math.min(this.o.sessionLength ?? this.contextLength, this.contextLength) : this.contextLength;
    if (promptTokens.length === 0) throw invalidRequest('The prompt is empty.', 'prompt');
    // A job with no choices would throw in the scheduler loop and wedge every other request.
    if (!Number.isInteger(request.n) || request.n < 1) throw invalidRequest('n must be a positive integer.', 'n');
    const sampling = this.sampling(request);
    if (sampling.numBeams > 1 && request.n > 1) throw invalidRequest('n > 1 cannot be combined with num_beams > 1.', 'n');
    if (sampling.numBeams > 1 && request.logprobs !== undefined) {
      throw invalidRequest('logprobs cannot be combined with num_beams > 1.', 'logprobs');
    }
    if (request.logprobs !== undefined && (!Number.isInteger(request.logprobs) || request.logprobs < 0 || request.logprobs > 20)) {
      throw invalidRequest('logprobs must be an integer from 0 to 20.', 'logprobs');
    }
    this.checkVocabulary(promptTokens, sampling);

    const room = limit - promptTokens.length;
    if (!session && (room <= 0 || (request.maxTokens !== undefined && request.maxTokens > room))) {
      throw contextLengthExceeded(promptTokens.length, request.maxTokens ?? 1, limit);
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
    };
    spec.reuse = this.reusePrefix(promptTokens, request.session);
    const cache = this.cache;
    const ctx: JobContext = {
      backend: this.o.backend,
      tokenizer: this.o.tokenizer,
      allocSeq: () => this.nextSeq++,
      emit: (event) => {
        channel.push(event);
        if (event.type === 'usage') channel.close();
      },
      onComplete:
        session && turn
          ? (reply, _reason, tokens) => session.commit(reply, tokens && { promptText: turn.text, tokens: [...promptTokens, ...tokens] })
          : undefined,
      onRetain:
        cache && !request.session?.end ? (seq, tokens) => (cache.insert(seq, tokens, request.session?.id), true) : undefined,
      // A cancelled or failed job ends its stream too, so no reader waits forever.
      onDispose: () => {
        session?.release();
        channel.close();
      },
    };
    const job = sampling.numBeams > 1 ? new BeamJob(spec, ctx) : new SamplingJob(spec, ctx);
    const start: GenerationEvent = { type: 'start', promptTokens: promptTokens.length, promptText: this.o.tokenizer.decode(promptTokens) };

    // A session whose history fills its context answers at once with finish_reason "length" (lmdeploy).
    if (spec.maxNewTokens <= 0) {
      channel.push(start);
      ctx.emit({ type: 'finish', index: 0, reason: 'length' });
      ctx.emit({ type: 'usage', promptTokens: promptTokens.length, completionTokens: 0 });
      job.dispose();
      return job;
    }
    try {
      this.scheduler.submit({ job, fail: (error) => channel.close(error) });
    } catch (error) {
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
  private reusePrefix(tokens: number[], session: GenerateRequest['session']): JobSpec['reuse'] {
    if (!this.cache) return undefined;
    if (session?.start) this.cache.drop(session.id); // a new conversation; `end` still reuses, then forgets
    const hit = this.cache.lookup(tokens, session?.id);
    if (!hit) return undefined;
    const reuse = { cached: hit.length, kvLength: hit.entry.tokens.length };
    if (session && hit.entry.owner === session.id) {
      this.cache.take(hit.entry);
      return { seq: hit.entry.seq, ...reuse };
    }
    // A model whose logits depend on how tokens are grouped into calls: a prefix computed for
    // another request would change this one's reply.
    if (this.o.backend.info.batchInvariant === false) return undefined;
    const seq = this.nextSeq++;
    this.o.backend.fork(hit.entry.seq, seq).catch(() => {}); // a failure surfaces at the prefill
    return { seq, ...reuse };
  }

  /** The first token id the model has no row for, if any. */
  private outOfVocabulary(tokens: number[]): number | undefined {
    const vocab = this.o.backend.info.vocabSize;
    return tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
  }

  private checkVocabulary(tokens: number[], sampling: SamplingParams): void {
    const vocab = this.o.backend.info.vocabSize;
    const bad = this.outOfVocabulary(tokens);
    if (bad !== undefined) throw invalidRequest(`Token id ${bad} is outside the vocabulary (0..${vocab - 1}).`, 'prompt');
    for (const key of Object.keys(sampling.logitBias ?? {})) {
      if (Number(key) < 0 || Number(key) >= vocab) throw invalidRequest(`logit_bias names token ${key}, outside the vocabulary.`, 'logit_bias');
    }
  }
}
