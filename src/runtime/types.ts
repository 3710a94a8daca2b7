/**
 * The runtime interface: what handlers call. Platform-neutral and wire-format-neutral
 * (camelCase engine types; the handlers own the OpenAI / lmdeploy field names).
 * @module
 */

import type { RuntimeMetrics } from './metrics.js';

export type { RuntimeMetrics } from './metrics.js';

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: Role;
  content: string;
  /** The speaker's name (OpenAI's `name`), where a template uses it. */
  name?: string;
  /** Calls an assistant message made. */
  toolCalls?: ToolCall[];
  /** The call a `tool` message answers. */
  toolCallId?: string;
}

/** A call of a function: its arguments are JSON text, as the model wrote them. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A function the model may call; `parameters` is a JSON Schema for its arguments object. */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

/** Whether the model may (`auto`), must not (`none`) or must (`required`, or that function) call a tool. */
export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

export interface ToolsRequest {
  definitions: ToolDefinition[];
  choice: ToolChoice;
  /** Whether one reply may hold several calls. */
  parallel: boolean;
}

/** What to generate from: raw text, token ids, or a conversation to render with the chat template. */
export type PromptInput =
  /** `addSpecialTokens: false` leaves out the tokenizer's BOS (lmdeploy's `add_bos: false`); default true. */
  | { kind: 'text'; text: string; addSpecialTokens?: boolean }
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
  /**
   * true: a continuation of a session this server does not hold starts it afresh (lmdeploy 0.2's
   * interactive chat); otherwise it is refused as unknown, so no history is lost silently.
   */
  startIfMissing?: boolean;
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
  /** Functions the model may call (chat only): rendered into the prompt, calls parsed out of the reply. */
  tools?: ToolsRequest;
  /** Every choice's text must match this; end-of-sequence is allowed exactly when it is complete. */
  constraint?: Constraint;
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

/**
 * What a runtime error's `param` names: a field of GenerateRequest / EmbedRequest (`logitBias` is
 * `sampling.logitBias`, `session` the session id). Handlers map these to their wire field names.
 */
export type RequestField = 'model' | 'input' | 'n' | 'logprobs' | 'maxTokens' | 'logitBias' | 'stopTokenIds' | 'session';

/**
 * Advice the host adds to errors whose fix is in its configuration (a CLI flag, an option of
 * createWebRuntime): the runtime itself knows no flags.
 */
export interface HostAdvice {
  /** Appended when a request names a model the server does not serve. */
  unknownModel?: string;
  /** Appended when a chat request needs a chat template the model does not have. */
  noChatTemplate?: string;
  /** Appended when /v1/embeddings asks a generation model without a usable hidden state. */
  noEmbeddingModel?: string;
}

/** A generated token's log-probability under the model's raw distribution, with the top alternatives. */
export interface TokenLogprob {
  token: number;
  /**
   * The text this token added to the choice's text (what the streaming detokenizer released for
   * it), so a choice's token texts concatenate to its text. A token that ends inside a UTF-8
   * character adds '' and the one that completes it adds the whole character.
   */
  text: string;
  /** The token's own bytes (UTF-8 pieces for byte-level tokens; empty for special tokens). */
  bytes: number[];
  logprob: number;
  /** Alternatives at this position, each with its bytes and their text as UTF-8 (out of context). */
  top: Array<{ token: number; text: string; bytes: number[]; logprob: number }>;
}

export type GenerationEvent =
  /**
   * Emitted once, before any delta: the prompt was accepted. `cachedTokens` of its tokens were
   * found in kept KV (prefix cache, or the session's history) and are not forwarded again.
   */
  | { type: 'start'; promptTokens: number; promptText: string; cachedTokens?: number }
  /** New text for choice `index`; `tokens` are the ids that produced it (possibly empty text while held back). */
  | { type: 'delta'; index: number; text: string; tokens: number[]; logprobs?: TokenLogprob[] }
  /**
   * Part of a tool call in choice `index`'s reply (only with `tools`): first its `id` and `name`,
   * then its `arguments` JSON in pieces that concatenate to the whole. `call` numbers the calls.
   */
  | { type: 'toolCall'; index: number; call: number; id?: string; name?: string; arguments?: string }
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
  /** A LoRA adapter's base model id (served from the same weights); absent for a base model. */
  parent?: string;
}

/**
 * `draining`: shutting down but still serving (health checks fail so balancers stop sending);
 * `failed`: the inference backend died (its thread, its device); nothing can be served until a restart.
 */
export type RuntimeStatus = 'loading' | 'ready' | 'draining' | 'closed' | 'failed';

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
  /** Counters and gauges for `/metrics`; absent or undefined when the runtime keeps none (yet). */
  metrics?(): RuntimeMetrics | undefined;
  close(): Promise<void>;
}
