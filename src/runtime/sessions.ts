/**
 * lmdeploy-style conversations for /generate: a session id keeps the chat history between
 * calls until `sequence_end`. One call at a time per session (a second gets 409). Idle sessions
 * beyond `maxSessions` are forgotten, least recently used first.
 *
 * Like lmdeploy, a turn appends to the session's token context: the previous prompt's tokens, the
 * tokens the model generated, then only the new text the chat template adds for this turn. The
 * history is neither re-rendered into tokens nor re-tokenized, so turn N costs only its new tokens,
 * and a reply the tokenizer would split differently still matches the cached KV.
 * @module
 */
import { InferenceError, invalidRequest } from '../errors.js';
import type { ChatMessage, PromptInput, RequestField, SessionControl } from './types.js';

/** What the session's context held after its last completed turn. */
export interface SessionContext {
  /** The text the template rendered for that turn's prompt. */
  promptText: string;
  /** The reply's text. */
  reply: string;
  /** The prompt's tokens followed by the generated ones: what the model has seen. */
  tokens: number[];
}

interface SessionState {
  history: ChatMessage[];
  context?: SessionContext;
  busy: boolean;
}

export interface OpenSession {
  /** The whole conversation to render: history plus this turn. */
  readonly messages: ChatMessage[];
  /** The context after the previous turn, when this turn may append to it. */
  readonly context?: SessionContext;
  /** Records the assistant's reply of this turn, and the context it leaves when its tokens are known. */
  commit(reply: string, turn?: Omit<SessionContext, 'reply'>): void;
  /** Ends this call; forgets the session when the call said `end`. */
  release(): void;
}

export class SessionStore {
  private readonly sessions = new Map<string, SessionState>();

  constructor(private readonly maxSessions = 1024) {}

  get size(): number {
    return this.sessions.size;
  }

  open(control: SessionControl, input: PromptInput): OpenSession {
    const existing = this.sessions.get(control.id);
    if (existing?.busy) {
      throw new InferenceError(409, `Session ${control.id} is busy with another request; retry when it has finished.`, {
        param: 'session' satisfies RequestField,
        code: 'session_busy',
      });
    }
    if (input.kind === 'tokens') throw invalidRequest('A session prompt must be text or messages.', 'input' satisfies RequestField);
    const state: SessionState = control.start || !existing ? { history: [], busy: false } : existing;
    // A messages prompt replaces the history, so it does not continue the context.
    const messages = input.kind === 'messages' ? input.messages : [...state.history, { role: 'user' as const, content: input.text }];
    const context = input.kind === 'text' ? state.context : undefined;
    state.busy = true;
    this.sessions.delete(control.id);
    this.sessions.set(control.id, state); // most recently used last
    this.evictIdle();
    let released = false;
    return {
      messages,
      context,
      commit: (reply, turn) => {
        state.history = [...messages, { role: 'assistant', content: reply }];
        state.context = turn && { ...turn, reply };
      },
      release: () => {
        if (released) return;
        released = true;
        state.busy = false;
        if (control.end && this.sessions.get(control.id) === state) this.sessions.delete(control.id);
      },
    };
  }

  private evictIdle(): void {
    for (const [id, state] of this.sessions) {
      if (this.sessions.size <= this.maxSessions) return;
      if (!state.busy) this.sessions.delete(id);
    }
  }
}

/**
 * The text a turn adds after the previous turn's reply: `rendered` (the whole conversation with
 * this turn) must extend the previous prompt's text, followed by the reply as the template writes
 * it (trimmed, after whitespace at most). What follows the reply (the end-of-turn marker, the new
 * user message, the assistant prefix) is returned. Undefined when the template rewrote history, so
 * the turn must be rendered and tokenized in full.
 */
export function turnSuffix(previous: Pick<SessionContext, 'promptText' | 'reply'>, rendered: string): string | undefined {
  if (!rendered.startsWith(previous.promptText)) return undefined;
  const rest = rendered.slice(previous.promptText.length);
  const reply = previous.reply.trim();
  const at = rest.indexOf(reply);
  return at < 0 || rest.slice(0, at).trim() !== '' ? undefined : rest.slice(at + reply.length);
}
