/**
 * The two ways `edgellm client` keeps a conversation:
 * - GenerateSession: lmdeploy's `/generate` session. The server keeps the history (and its KV
 *   cache), so each turn sends only the new message; the session is ended with `sequence_end`
 *   so the server frees it. The client keeps a transcript too: when the server says it does not
 *   hold the session (`session_not_found`: it restarted, evicted it, or a balancer moved the
 *   session to another replica), the turn is sent again with the whole conversation, starting
 *   the session over without losing its history.
 * - ChatHistory: `/v1/chat/completions`, stateless; the client resends the whole history.
 * @module
 */
import { readJsonStream } from './json-stream.js';
import { toWireParams, type Params } from './params.js';
import { ServerError, streamError, type Transport } from './transport.js';

export interface TurnResult {
  text: string;
  /** `stop`, `length`, ...; null when interrupted. */
  finishReason: string | null;
  /** Tokens generated, when the server says (/generate does). */
  tokens?: number;
  interrupted: boolean;
  /** Something the user should know about this turn (e.g. the session had to be started again). */
  notice?: string;
}

export interface Conversation {
  /** For the banner and /reset: `/generate session 42`, `chat completions`. */
  readonly label: string;
  /** Whether the server or the history already holds turns of this conversation. */
  readonly started: boolean;
  system: string | undefined;
  /** What setting the system prompt does now, in words. */
  systemNote(): string;
  /** One turn: streams the reply's text through `onText`; an abort ends it as interrupted. */
  send(text: string, params: Params, onText: (text: string) => void, signal?: AbortSignal): Promise<TurnResult>;
  /** Forgets the conversation (ends a /generate session first). */
  reset(): Promise<void>;
  /** Frees what the server holds for it. */
  end(): Promise<void>;
}

interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Random, so two clients on one server do not share a session by accident. */
export const randomSessionId = () => 1 + Math.floor(Math.random() * 2_000_000_000);

const isAbort = (error: unknown, signal?: AbortSignal) => signal?.aborted === true || (error as Error)?.name === 'AbortError';

/**
 * Sends a turn and reads its stream. `step` takes each JSON value and returns its text and, at
 * the end, the finish reason; an in-band error object is thrown as a ServerError. An abort, before
 * the answer or during it, ends the turn as interrupted.
 */
async function readTurn(
  request: () => Promise<Response>,
  format: 'ndjson' | 'sse',
  step: (value: any) => { text?: string; finishReason?: string | null; tokens?: number },
  onText: (text: string) => void,
  signal?: AbortSignal,
): Promise<TurnResult> {
  const result: TurnResult = { text: '', finishReason: null, interrupted: false };
  try {
    const response = await request();
    for await (const value of readJsonStream(response.body!, format)) {
      const error = streamError(value);
      if (error) throw error;
      const { text, finishReason, tokens } = step(value);
      if (text) {
        result.text += text;
        onText(text);
      }
      if (tokens !== undefined) result.tokens = tokens;
      if (finishReason) result.finishReason = finishReason;
    }
  } catch (error) {
    if (!isAbort(error, signal)) throw error;
    return { ...result, finishReason: null, interrupted: true };
  }
  if (signal?.aborted) return { ...result, finishReason: null, interrupted: true };
  if (!result.finishReason) throw new ServerError('the reply stopped before it finished (did the server stop?)', undefined, undefined, undefined);
  return result;
}

export interface GenerateSessionOptions {
  sessionId?: number;
  model?: string;
  system?: string;
  /** Where new session ids come from (tests pin it). */
  newSessionId?: () => number;
}

const isSessionNotFound = (error: unknown) => error instanceof ServerError && error.status === 404 && error.code === 'session_not_found';

export class GenerateSession implements Conversation {
  system: string | undefined;
  private id: number;
  private open = false;
  /** The finished turns the server should hold (system prompt included), to start the session again. */
  private transcript: Message[] = [];
  private readonly newId: () => number;

  constructor(
    private readonly transport: Transport,
    private readonly options: GenerateSessionOptions = {},
  ) {
    this.newId = options.newSessionId ?? randomSessionId;
    this.id = options.sessionId ?? this.newId();
    this.system = options.system;
  }

  get sessionId(): number {
    return this.id;
  }

  get label(): string {
    return `/generate session ${this.id}`;
  }

  get started(): boolean {
    return this.open;
  }

  systemNote(): string {
    // The server keeps the history, system prompt included: it can only be given when a session starts.
    return this.open ? 'it applies from the next conversation: /reset starts one now' : 'it applies from the next message';
  }

  async send(text: string, params: Params, onText: (text: string) => void, signal?: AbortSignal): Promise<TurnResult> {
    const first = !this.open;
    const user: Message = { role: 'user', content: text };
    const start = first && this.system ? [{ role: 'system', content: this.system } as Message] : [];
    let result: TurnResult;
    let notice: string | undefined;
    try {
      result = await this.turn(first && this.system ? [...start, user] : text, first, params, onText, signal);
    } catch (error) {
      if (first || !isSessionNotFound(error)) throw error;
      // Nothing was generated (the 404 comes before the stream): resend the conversation as a new start.
      notice = `the server no longer held session ${this.id} (restarted, evicted it, or a balancer moved it); the conversation was sent again to restart it`;
      result = await this.turn([...this.transcript, user], true, params, onText, signal);
    }
    // An interrupted turn is not in the server's history (it records only finished replies), so a
    // first turn cut short must start the session again, with its system prompt.
    if (!result.interrupted) {
      this.open = true;
      this.transcript = [...(first ? start : this.transcript), user, { role: 'assistant', content: result.text }];
    }
    return notice ? { ...result, notice } : result;
  }

  private turn(prompt: string | Message[], start: boolean, params: Params, onText: (text: string) => void, signal?: AbortSignal) {
    const body = { ...toWireParams(params, 'generate'), prompt, session_id: this.id, sequence_start: start, sequence_end: false, stream: true };
    return readTurn(
      () => this.post(body, signal),
      'ndjson',
      (line: { text?: string; tokens?: number; finish_reason?: string | null }) => ({
        text: line.text,
        tokens: line.tokens,
        finishReason: line.finish_reason,
      }),
      onText,
      signal,
    );
  }

  async reset(): Promise<void> {
    await this.end();
    this.id = this.options.sessionId ?? this.newId();
  }

  async end(): Promise<void> {
    if (!this.open) return;
    // lmdeploy's way to close a session: sequence_end with no new tokens.
    try {
      const response = await this.post({
        prompt: '',
        session_id: this.id,
        sequence_start: false,
        sequence_end: true,
        request_output_len: 0,
      });
      await response.text();
    } catch (error) {
      if (!isSessionNotFound(error)) throw error; // already gone: nothing to free
    }
    this.open = false;
    this.transcript = [];
  }

  /**
   * A turn interrupted with Ctrl-C is cancelled by the server at its next step; until then the
   * session answers 409. Wait that moment out instead of failing the next command.
   */
  private async post(body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
    const payload = this.options.model ? { ...body, model: this.options.model } : body;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.transport.request('/generate', { body: payload, signal, headers: { 'x-session-id': String(this.id) } });
      } catch (error) {
        const busy = error instanceof ServerError && error.status === 409 && error.code === 'session_busy';
        if (!busy || attempt >= 20 || signal?.aborted) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

export interface ChatHistoryOptions {
  model?: string;
  system?: string;
}

export class ChatHistory implements Conversation {
  readonly label = 'chat completions';
  system: string | undefined;
  private history: Message[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly options: ChatHistoryOptions = {},
  ) {
    this.system = options.system;
  }

  get started(): boolean {
    return this.history.length > 0;
  }

  get messages(): readonly Message[] {
    return this.history;
  }

  systemNote(): string {
    return 'it is sent with every message from now on';
  }

  async send(text: string, params: Params, onText: (text: string) => void, signal?: AbortSignal): Promise<TurnResult> {
    const user: Message = { role: 'user', content: text };
    const messages = [...(this.system ? [{ role: 'system', content: this.system } as Message] : []), ...this.history, user];
    const body = { ...toWireParams(params, 'chat'), ...(this.options.model ? { model: this.options.model } : {}), messages, stream: true };
    const result = await readTurn(
      () => this.transport.request('/v1/chat/completions', { body, signal }),
      'sse',
      (chunk: { choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }> }) => ({
        text: chunk.choices?.[0]?.delta?.content ?? undefined,
        finishReason: chunk.choices?.[0]?.finish_reason,
      }),
      onText,
      signal,
    );
    // Same rule as a /generate session: only finished replies join the history.
    if (!result.interrupted) this.history.push(user, { role: 'assistant', content: result.text });
    return result;
  }

  async reset(): Promise<void> {
    this.history = [];
  }

  async end(): Promise<void> {}
}
