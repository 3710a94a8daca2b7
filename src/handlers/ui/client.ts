/**
 * What the chat page does in the browser: lists models, sends the conversation to
 * `v1/chat/completions` with `stream: true`, renders the streamed markdown, stops on request, and
 * shows server errors in the chat. URLs are relative, so the page works under any `basePath`.
 *
 * It never runs on the server: the page embeds `startChat.toString()` and calls it with the
 * markdown renderer and the SSE parser, so it references nothing but its arguments and browser
 * globals. Written in TypeScript so the DOM code is type-checked. As in markdown.ts, its helpers are
 * methods of one object literal and its callbacks anonymous, which no bundler rewrites.
 * @module
 */
import type { SseParser } from './sse-parser.js';

export interface ChatHelpers {
  renderMarkdown(markdown: string): string;
  createSseParser(): SseParser;
}

export function startChat({ renderMarkdown, createSseParser }: ChatHelpers): void {
  type Turn = { role: 'user' | 'assistant'; content: string };
  type Outcome = { finish?: string; usage?: { prompt_tokens: number; completion_tokens: number } };
  type Failure = Error & { httpStatus?: number };

  const log = document.getElementById('log') as HTMLDivElement;
  const input = document.getElementById('input') as HTMLTextAreaElement;
  const composer = document.getElementById('composer') as HTMLFormElement;
  const sendButton = document.getElementById('send') as HTMLButtonElement;
  const stopButton = document.getElementById('stop') as HTMLButtonElement;
  const modelSelect = document.getElementById('model') as HTMLSelectElement;
  const settings = document.getElementById('settings') as HTMLDetailsElement;
  const form = document.getElementById('settings-form') as HTMLFormElement;
  const keyRow = document.getElementById('key-row') as HTMLElement;
  const keyInput = document.getElementById('api-key') as HTMLInputElement;
  const beamNote = document.getElementById('beam-note') as HTMLElement;
  const status = document.getElementById('status') as HTMLElement;
  const FIELDS = ['max_tokens', 'temperature', 'top_p', 'top_k', 'num_beams', 'repetition_penalty'];

  let history: Turn[] = [];
  // Sent as X-Session-Id so a balancer keeps one conversation on one replica (its prefix cache there).
  let conversationId = String(1 + Math.floor(Math.random() * 2_000_000_000));
  let controller: AbortController | null = null;
  let contextLengths = new Map<string, number>();

  const ui = {
    field(name: string): HTMLInputElement {
      return form.elements.namedItem(name) as HTMLInputElement;
    },
    /** Storage may be switched off (private modes, sandboxed frames): the page then just forgets. */
    storage(area: 'localStorage' | 'sessionStorage', key: string, value?: string): string | null {
      try {
        if (value === undefined) return window[area].getItem(key);
        if (value === '') window[area].removeItem(key);
        else window[area].setItem(key, value);
      } catch {
        // nothing to remember with
      }
      return null;
    },
    atBottom(): boolean {
      return log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    },
    note(article: HTMLElement, text: string): void {
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = text;
      article.append(p);
    },
    addMessage(role: 'user' | 'assistant' | 'error', text = ''): HTMLElement {
      const article = document.createElement('article');
      article.className = `msg ${role}`;
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = role === 'user' ? 'You' : role === 'assistant' ? 'Assistant' : 'Error';
      const body = document.createElement('div');
      body.className = 'body';
      body.textContent = text;
      if (role === 'error') article.setAttribute('role', 'alert');
      article.append(who, body);
      log.append(article);
      log.scrollTop = log.scrollHeight;
      return article;
    },
    paint(body: Element, markdown: string): void {
      const stick = ui.atBottom();
      body.innerHTML = renderMarkdown(markdown);
      if (stick) log.scrollTop = log.scrollHeight;
    },
    headers(): Record<string, string> {
      const key = keyInput.value.trim();
      return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
    },
    async errorMessage(response: Response): Promise<string> {
      try {
        const body = await response.json();
        if (typeof body?.error?.message === 'string') return body.error.message;
      } catch {
        // not an OpenAI error object: fall back to the status line
      }
      return `HTTP ${response.status} ${response.statusText}`.trim();
    },
    failure(message: string, httpStatus?: number): Failure {
      return Object.assign(new Error(message), { httpStatus });
    },
    postChat(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
      // The conversation's id: a balancer routing on X-Session-Id keeps its prefix cache on one replica.
      return fetch('v1/chat/completions', { method: 'POST', headers: { ...ui.headers(), 'x-session-id': conversationId }, body: JSON.stringify(body), signal });
    },
    /** The OpenAI error code of a failed response, if it has one (the body stays readable). */
    async errorCode(response: Response): Promise<string | undefined> {
      try {
        return (await response.clone().json())?.error?.code ?? undefined;
      } catch {
        return undefined;
      }
    },
    showError(message: string, httpStatus?: number): void {
      if (httpStatus === 401) {
        keyRow.hidden = false;
        settings.open = true;
        keyInput.focus();
        message += ' Enter the API key under Settings.';
      }
      ui.addMessage('error', message);
    },
    applyModel(): void {
      const length = contextLengths.get(modelSelect.value);
      const maxTokens = ui.field('max_tokens');
      if (length) {
        maxTokens.max = String(length);
        // A default above a small model's context would only fail: leave room for the prompt.
        if (maxTokens.valueAsNumber > length) maxTokens.value = String(Math.max(1, Math.floor(length / 2)));
      }
      if (modelSelect.value) ui.storage('localStorage', 'edgellm.model', modelSelect.value);
    },
    async loadModels(): Promise<void> {
      status.textContent = 'Loading models…';
      try {
        const response = await fetch('v1/models', { headers: ui.headers() });
        if (!response.ok) throw ui.failure(await ui.errorMessage(response), response.status);
        const models: { id: string; max_model_len?: number }[] = (await response.json()).data;
        const wanted = modelSelect.value || ui.storage('localStorage', 'edgellm.model');
        modelSelect.replaceChildren(...models.map((m) => new Option(m.id, m.id)));
        if (wanted && models.some((m) => m.id === wanted)) modelSelect.value = wanted;
        contextLengths = new Map(models.map((m) => [m.id, m.max_model_len ?? 0]));
        ui.applyModel();
        status.textContent = models.length === 1 ? 'Ready.' : `Ready: ${models.length} models.`;
      } catch (error) {
        status.textContent = '';
        const { message, httpStatus } = error as Failure;
        ui.showError(httpStatus ? message : `Cannot reach the server: ${message}`, httpStatus);
      }
    },
    requestBody(messages: Turn[]): Record<string, unknown> {
      const body: Record<string, unknown> = { messages, stream: true, stream_options: { include_usage: true } };
      if (modelSelect.value) body.model = modelSelect.value;
      // An empty field is left out: the server's default applies (for max_tokens: up to the context).
      for (const name of FIELDS) if (!Number.isNaN(ui.field(name).valueAsNumber)) body[name] = ui.field(name).valueAsNumber;
      if (ui.field('json_output').checked) body.response_format = { type: 'json_object' };
      return body;
    },
    async readStream(response: Response, onText: (text: string) => void): Promise<Outcome> {
      const outcome: Outcome = {};
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      const parser = createSseParser();
      for (;;) {
        const { value, done } = await reader.read();
        for (const data of parser.push(done ? decoder.decode() : decoder.decode(value, { stream: true }))) {
          if (data === '[DONE]') return outcome;
          const chunk = JSON.parse(data);
          // An error after the stream started comes in band, as an OpenAI error object.
          if (chunk.error) throw ui.failure(chunk.error.message);
          const choice = chunk.choices?.[0];
          if (choice?.delta?.content) onText(choice.delta.content);
          if (choice?.finish_reason) outcome.finish = choice.finish_reason;
          if (chunk.usage) outcome.usage = chunk.usage;
        }
        if (done) throw ui.failure('The connection closed before the reply was complete.');
      }
    },
    async send(): Promise<void> {
      const text = input.value;
      if (!text.trim() || controller) return;
      if (!form.checkValidity()) {
        settings.open = true;
        form.reportValidity();
        return;
      }
      input.value = '';
      input.style.height = '';
      // New session replaces `history`; this turn keeps writing to the conversation it started in.
      const turns = history;
      turns.push({ role: 'user', content: text });
      const asked = ui.addMessage('user', text);
      const reply = ui.addMessage('assistant');
      const body = reply.querySelector('.body')!;
      reply.classList.add('pending');
      reply.setAttribute('aria-busy', 'true');
      const ctl = new AbortController();
      controller = ctl;
      sendButton.disabled = true;
      stopButton.disabled = false;
      const beams = ui.field('num_beams').valueAsNumber > 1;
      status.textContent = beams ? 'Beam search: the reply arrives in one piece when it is done…' : 'Generating…';

      let content = '';
      let frame = 0;
      const started = performance.now();
      let outcome: Outcome = {};
      let failure: Failure | undefined;
      let uncapped: number | undefined;
      try {
        const sent = ui.requestBody(turns);
        let response = await ui.postChat(sent, ctl.signal);
        // After a few turns a small model's context has no room left for Max tokens: ask again without it
        // (the reply may then use the rest of the context) instead of failing the turn, and say so.
        if (response.status === 400 && sent.max_tokens !== undefined && (await ui.errorCode(response)) === 'context_length_exceeded') {
          uncapped = sent.max_tokens as number;
          delete sent.max_tokens;
          response = await ui.postChat(sent, ctl.signal);
        }

        if (!response.ok) throw ui.failure(await ui.errorMessage(response), response.status);
        outcome = await ui.readStream(response, (delta) => {
          content += delta;
          reply.classList.remove('pending');
          // One render per frame however fast tokens come.
          frame ||= requestAnimationFrame(() => {
            frame = 0;
            ui.paint(body, content);
          });
        });
      } catch (error) {
        if (!ctl.signal.aborted) failure = error as Failure;
      }
      cancelAnimationFrame(frame);
      ui.paint(body, content);
      reply.classList.remove('pending');
      reply.removeAttribute('aria-busy');
      controller = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
      // New session ended this turn: its conversation is gone, and so is anything to report about it.
      if (turns !== history) return;

      if (failure && !content) {
        // Nothing came back: take the question out of the conversation and give it back to edit or resend.
        reply.remove();
        turns.pop();
        asked.classList.add('unsent');
        ui.note(asked, 'Not sent.');
        if (!input.value) input.value = text;
        status.textContent = '';
        ui.showError(failure.httpStatus ? failure.message : `Request failed: ${failure.message}`, failure.httpStatus);
      } else {
        // A partial reply (stopped or broken off) stays: it is what the model said, and the next turn sees it.
        turns.push({ role: 'assistant', content });
        if (ctl.signal.aborted) {
          reply.classList.add('stopped');
          ui.note(reply, 'Stopped.');
          status.textContent = 'Stopped.';
        } else if (failure) {
          reply.classList.add('stopped');
          ui.note(reply, 'Interrupted.');
          status.textContent = '';
          ui.showError(failure.message);
        } else {
          if (uncapped !== undefined) ui.note(reply, `Max tokens (${uncapped}) did not fit the context left, so this reply could use all of it.`);
          if (outcome.finish === 'length') ui.note(reply, 'Cut off at the token limit.');
          const seconds = (performance.now() - started) / 1000;
          const tokens = outcome.usage?.completion_tokens;
          status.textContent =
            tokens === undefined ? 'Done.' : `${tokens} tokens in ${seconds.toFixed(1)} s (${(tokens / seconds).toFixed(1)} tokens/s).`;
        }
      }
      if (document.activeElement === document.body || document.activeElement === stopButton) input.focus();
    },
    newSession(): void {
      controller?.abort();
      history = [];
      conversationId = String(1 + Math.floor(Math.random() * 2_000_000_000));
      log.replaceChildren();
      status.textContent = 'New session.';
      input.focus();
    },
    showBeamNote(): void {
      beamNote.hidden = !(ui.field('num_beams').valueAsNumber > 1);
    },
  };

  input.addEventListener('keydown', (event) => {
    // keyCode 229: Safari's Enter that confirms an IME composition (Chinese, Japanese input) must not send.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  input.addEventListener('input', () => {
    input.style.height = '';
    input.style.height = `${input.scrollHeight}px`;
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && controller) controller.abort();
  });
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    void ui.send();
  });
  stopButton.addEventListener('click', () => controller?.abort());
  (document.getElementById('new-session') as HTMLButtonElement).addEventListener('click', () => ui.newSession());
  modelSelect.addEventListener('change', () => ui.applyModel());

  let saved: Record<string, unknown> = {};
  try {
    saved = JSON.parse(ui.storage('localStorage', 'edgellm.settings') ?? '{}');
  } catch {
    // a damaged entry: keep the defaults
  }
  for (const name of FIELDS) if (typeof saved[name] === 'string') ui.field(name).value = saved[name] as string;
  form.addEventListener('input', () => {
    ui.storage('localStorage', 'edgellm.settings', JSON.stringify(Object.fromEntries(FIELDS.map((name) => [name, ui.field(name).value]))));
    ui.showBeamNote();
  });
  form.addEventListener('submit', (event) => event.preventDefault());
  keyInput.value = ui.storage('sessionStorage', 'edgellm.apiKey') ?? '';
  keyRow.hidden = !keyInput.value;
  keyInput.addEventListener('change', () => {
    ui.storage('sessionStorage', 'edgellm.apiKey', keyInput.value.trim());
    void ui.loadModels();
  });

  if (matchMedia('(max-width: 720px)').matches) settings.open = false;
  ui.showBeamNote();
  void ui.loadModels();
  input.focus();
}
