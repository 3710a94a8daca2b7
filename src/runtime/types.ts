/**
 * The runtime interface: what handlers call. Platform-neutral and wire-format-neutral
 * (camelCase engine types; the handlers own the OpenAI / lmdeploy field names).
 * @module
 */

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: Role;
  content: string;
}

/** What to generate from: raw text, token ids, or a conversation to render with the chat template. */
export type PromptInput =
  | { kind: 'text'; text: string }
  | { kind: 'tokens'; tokens: number[] }
  | { kind: 'messages'; messages: ChatMessage[] };

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  /** 0 means disabled. */
  topK: number;
  /** 1 means disabled. */
  topP: number;
  /** 0 means disabled. */
  minP: number;
  /** 1 means disabled (CTRL-style: divide positive logits, multiply negative ones). */
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** token id -> bias added to its logit */
  logitBias?: Record<number, number>;
  /** Seed for this request's random generator; undefined means a random seed. */
  seed?: number;
  /** > 1 switches to beam search (deterministic; temperature etc. are ignored). */
  numBeams: number;
  lengthPenalty: number;
}

/** lmdeploy-style stateful session controls (`/generate`). */
export interface SessionControl {
  id: string;
  /** true: forget any history and start a new conversation. */
  start: boolean;
  /** true: forget the session after this call. */
  end: boolean;
}

/**
 * What a generated text must match, enforced token by token. Specs compose, so a caller can
 * enforce a schema inside literal text (a tool call's wrapper): `sequence`, `choice`, `repeat`.
 */
export type ConstraintSpec =
  /** Any JSON object. */
  | { kind: 'json' }
  /** A JSON document valid under the schema (the supported subset; other keywords are refused). */
  | { kind: 'jsonSchema'; schema: unknown }
  /** A full match of a regular expression. */
  | { kind: 'regex'; pattern: string }
  /** A llama.cpp GBNF grammar (start rule `root`). */
  | { kind: 'grammar'; gbnf: string }
  | { kind: 'literal'; text: string }
  | { kind: 'sequence'; parts: ConstraintSpec[] }
  | { kind: 'choice'; options: ConstraintSpec[] }
  | { kind: 'repeat'; item: ConstraintSpec; min: number; max?: number; separator?: string };

export interface Constraint {
  spec: ConstraintSpec;
  /** The request field a 400 about this constraint names (e.g. `response_format.json_schema.schema`). */
  param?: string;
}

export interface GenerateRequest {
  /** The model id the client asked for; undefined means the default model. */
  model?: string;
  input: PromptInput;
  /** For text prompts: 'completion' applies the server's completion template (alpaca, raw). */
  template?: 'completion' | 'none';
  /** What the client asked for; omitted fields fall back to the model's generation_config, then `defaults`. */
  sampling: Partial<SamplingParams>;
  /** Endpoint defaults (OpenAI and lmdeploy differ). */
  defaults?: Partial<SamplingParams>;
  /** Max new tokens; undefined means up to the context length. */
  maxTokens?: number;
  minTokens?: number;
  stop: string[];
  stopTokenIds?: number[];
  ignoreEos: boolean;
  /** Independent completions of the same prompt. */
  n: number;
  /** Report each token's logprob and this many top alternatives (0..20); undefined = off. */
  logprobs?: number;
  session?: SessionControl;
  /** Every choice's text must match this; end-of-sequence is allowed exactly when it is complete. */
  constraint?: Constraint;
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

/** A generated token's log-probability under the model's raw distribution, with the top alternatives. */
export interface TokenLogprob {
  token: number;
  text: string;
  logprob: number;
  top: Array<{ token: number; text: string; logprob: number }>;
}

export type GenerationEvent =
  /** Emitted once, before any delta: the prompt was accepted. */
  | { type: 'start'; promptTokens: number; promptText: string }
  /** New text for choice `index`; `tokens` are the ids that produced it (possibly empty text while held back). */
  | { type: 'delta'; index: number; text: string; tokens: number[]; logprobs?: TokenLogprob[] }
  | { type: 'finish'; index: number; reason: FinishReason }
  /** Emitted once, last. */
  | { type: 'usage'; promptTokens: number; completionTokens: number };

export interface GenerationDefaults {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
}

export interface EmbedRequest {
  model?: string;
  input: Array<string | number[]>;
  signal?: AbortSignal;
}

export interface EmbedResult {
  model: string;
  embeddings: Float32Array[];
  promptTokens: number;
}

export interface ModelInfo {
  id: string;
  kind: 'generation' | 'embedding';
  created: number;
  ownedBy: string;
  contextLength: number;
  /** Length of an embedding vector from this model. */
  embeddingSize: number;
}

export type RuntimeStatus = 'loading' | 'ready' | 'closed';

export interface InferenceRuntime {
  readonly specificationVersion: 'v1';
  status(): RuntimeStatus;
  models(): ModelInfo[];
  /** Tokens of a prompt as generate() would feed them (template applied). */
  tokenize(model: string | undefined, input: PromptInput, template?: GenerateRequest['template']): Promise<number[]>;
  /**
   * Start a generation. Validation errors (unknown model, prompt too long, busy session) reject
   * before the first event; the stream then yields events until `usage`.
   */
  generate(request: GenerateRequest): AsyncIterable<GenerationEvent>;
  embed(request: EmbedRequest): Promise<EmbedResult>;
  close(): Promise<void>;
}
