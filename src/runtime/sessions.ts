/**
 * lmdeploy-style conversations for /generate: a session id keeps the chat history between
 * calls until `sequence_end`. One call at a time per session (a second gets 409). Idle sessions
 * beyond `maxSessions` are forgotten, least recently used first.
 * @module
 */
import { InferenceError, invalidRequest } from '../errors.js';
import type { ChatMessage, PromptInput, SessionControl } from './types.js';

interface SessionState {
  history: ChatMessage[];
  busy: boolean;
}

export interface OpenSession {
  /** The whole conversation to render: history plus this turn. */
  readonly input: PromptInput;
  /** Records the assistant's reply of this turn. */
  commit(reply: string): void;
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
        param: 'session_id',
        code: 'session_busy',
      });
    }
    if (input.kind === 'tokens') throw invalidRequest('A session prompt must be text or messages.', 'prompt');
    const state: SessionState = control.start || !existing ? { history: [], busy: false } : existing;
    const messages = input.kind === 'messages' ? input.messages : [...state.history, { role: 'user' as const, content: input.text }];
    state.busy = true;
    this.sessions.delete(control.id);
    this.sessions.set(control.id, state); // most recently used last
    this.evictIdle();
    let released = false;
    return {
      input: { kind: 'messages', messages },
      commit: (reply) => {
        state.history = [...messages, { role: 'assistant', content: reply }];
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
