/**
 * A scripted runtime for testing handlers (and your own apps) without a model: each generate()
 * call replays a script of text pieces, and every request is recorded.
 * @module
 */
import { InferenceError, invalidRequest, notFound } from '../errors.js';
import { withToolCalls } from '../runtime/tools/tool-events.js';
import type {
  EmbedRequest, EmbedResult, FinishReason, GenerateRequest, GenerationEvent, InferenceRuntime, ModelInfo, PromptInput,
  RuntimeStatus,
} from '../runtime/types.js';

export interface MockScript {
  /** Text pieces, one per token, for every choice. */
  pieces: string[];
  finishReason?: FinishReason;
  promptTokens?: number;
  /** Throw this instead of starting (e.g. an InferenceError). */
  error?: unknown;
  /** Fail with this after the given number of pieces. */
  failAfter?: { pieces: number; error: unknown };
  /** Wait this long before each piece (ms), to test streaming and cancellation. */
  delayMs?: number;
  /** Logprob of piece `i` of choice `choice` when logprobs are asked for (default -(i + 1) / 10). */
  logprob?: (choice: number, i: number) => number;
}

export interface MockRuntimeOptions {
  model?: string;
  embeddingModel?: string;
  contextLength?: number;
  embeddingSize?: number;
  status?: RuntimeStatus;
  script?: MockScript | ((request: GenerateRequest) => MockScript);
}

export class MockRuntime implements InferenceRuntime {
  readonly specificationVersion = 'v1' as const;
  readonly requests: GenerateRequest[] = [];
  readonly embedRequests: EmbedRequest[] = [];
  /** How many generations were cancelled before they finished. */
  cancelled = 0;
  private state: RuntimeStatus;

  constructor(private readonly options: MockRuntimeOptions = {}) {
    this.state = options.status ?? 'ready';
  }

  setStatus(status: RuntimeStatus): void {
    this.state = status;
  }

  status(): RuntimeStatus {
    return this.state;
  }

  models(): ModelInfo[] {
    const base = { created: 1_700_000_000, ownedBy: 'edgellm', contextLength: this.options.contextLength ?? 2048 };
    const list: ModelInfo[] = [{ ...base, id: this.options.model ?? 'mock-model', kind: 'generation', embeddingSize: 8 }];
    if (this.options.embeddingModel) list.push({ ...base, id: this.options.embeddingModel, kind: 'embedding', embeddingSize: this.options.embeddingSize ?? 4 });
    return list;
  }

  async tokenize(_model: string | undefined, input: PromptInput): Promise<number[]> {
    return promptText(input).split(/\s+/).filter(Boolean).map((_, i) => i + 3);
  }

  generate(request: GenerateRequest): AsyncIterable<GenerationEvent> {
    this.checkModel(request.model);
    this.requests.push(request);
    const script = typeof this.options.script === 'function' ? this.options.script(request) : (this.options.script ?? { pieces: ['Hello', ' world'] });
    if (script.error) throw script.error;
    return this.play(request, script);
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    this.embedRequests.push(request);
    const model = request.model ?? this.options.embeddingModel ?? this.models()[0].id;
    if (!this.models().some((m) => m.id === model)) throw notFound(`The model \`${model}\` does not exist.`, 'model', 'model_not_found');
    const size = this.models().find((m) => m.id === model)!.embeddingSize;
    const embeddings = request.input.map((item, i) => Float32Array.from({ length: size }, (_, k) => (k === i % size ? 1 : 0)));
    const promptTokens = request.input.reduce((n, item) => n + (typeof item === 'string' ? item.split(/\s+/).length : item.length), 0);
    return { model, embeddings, promptTokens };
  }

  async close(): Promise<void> {
    this.state = 'closed';
  }

  private checkModel(model: string | undefined): void {
    if (this.state !== 'ready') throw new InferenceError(503, 'The model is still loading.');
    if (model && !this.models().some((m) => m.id === model)) throw notFound(`The model \`${model}\` does not exist.`, 'model', 'model_not_found');
    if (model && model === this.options.embeddingModel) throw invalidRequest('embedding model', 'model');
  }

  private async *play(request: GenerateRequest, script: MockScript): AsyncGenerator<GenerationEvent> {
    const promptTokens = script.promptTokens ?? (await this.tokenize(undefined, request.input)).length;
    let finished = false;
    // With tools, the scripted text is split into content and calls as the engine does (Hermes format).
    const out: GenerationEvent[] = [];
    const push = (event: GenerationEvent) => out.push(event);
    const emit = request.tools && request.tools.choice !== 'none' ? withToolCalls('hermes', push) : push;
    const take = () => out.splice(0, out.length);
    try {
      // Inside the try: a caller that stops right after the start event cancelled this generation too.
      yield { type: 'start', promptTokens, promptText: promptText(request.input) };
      const limit = Math.min(script.pieces.length, request.maxTokens ?? Number.POSITIVE_INFINITY);
      for (let choice = 0; choice < request.n; choice++) {
        for (let i = 0; i < limit; i++) {
          if (script.failAfter && i === script.failAfter.pieces) throw script.failAfter.error;
          if (script.delayMs) await new Promise((resolve) => setTimeout(resolve, script.delayMs));
          if (request.signal?.aborted) return;
          const delta: GenerationEvent = { type: 'delta', index: choice, text: script.pieces[i], tokens: [i + 3] };
          // Scripted logprobs: token i has logprob -(i + 1) / 10; alternatives are "alt0", "alt1", ...
          if (request.logprobs !== undefined) {
            const utf8 = (text: string) => Array.from(new TextEncoder().encode(text));
            const top = Array.from({ length: request.logprobs }, (_, k) => ({ token: 100 + k, text: `alt${k}`, bytes: utf8(`alt${k}`), logprob: -(k + 1) }));
            const logprob = script.logprob ? script.logprob(choice, i) : -(i + 1) / 10;
            delta.logprobs = [{ token: i + 3, text: script.pieces[i], bytes: utf8(script.pieces[i]), logprob, top }];
          }
          emit(delta);
          yield* take();
        }
        const reason = limit < script.pieces.length ? 'length' : (script.finishReason ?? 'stop');
        emit({ type: 'finish', index: choice, reason });
        yield* take();
      }
      yield { type: 'usage', promptTokens, completionTokens: request.n * limit };
      finished = true;
    } finally {
      if (!finished) this.cancelled++;
    }
  }
}

function promptText(input: PromptInput): string {
  if (input.kind === 'text') return input.text;
  if (input.kind === 'tokens') return input.tokens.join(' ');
  return input.messages.map((m) => m.content).join('\n');
}
