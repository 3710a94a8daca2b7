/**
 * Finds tool calls in generated text as it streams, in the formats chat models are trained on:
 * - `hermes`: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` anywhere in the reply
 *   (Hermes, Qwen 2/2.5/3, SmolLM, and edgellm's default tool prompt);
 * - `json`: the reply starts with a call object (Llama 3.x: `{"name": ..., "parameters": {...}}`,
 *   several separated by `;`) or an array of them (Mistral's `[TOOL_CALLS][...]`, whose marker is a
 *   special token the detokenizer drops).
 * Text outside calls is content. Arguments stream as the model writes them, so a client sees
 * `function.arguments` grow piece by piece, as OpenAI streams it.
 * @module
 */

export type ToolCallFormat = 'hermes' | 'json';

export type ToolCallPiece =
  | { kind: 'text'; text: string }
  /** A call's name is known. */
  | { kind: 'start'; call: number; name: string }
  /** More of a call's arguments (JSON text; the pieces of one call concatenate to its arguments). */
  | { kind: 'arguments'; call: number; text: string }
  | { kind: 'end'; call: number };

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
const NAME_KEYS = new Set(['name']);
const ARGUMENT_KEYS = new Set(['arguments', 'parameters']);

/** Incremental scanner of one call object: `{"name": "f", "arguments": {...}}`. */
class CallScanner {
  private depth = 0;
  private inString = false;
  private escape = false;
  /** Text of the string being read at depth 1 (a key, or the name's value). */
  private stringText = '';
  private key: string | undefined;
  private expectValue = false;
  /** Reading the arguments value: where it started in `raw` and its kind. */
  private argsKind: 'container' | 'string' | 'scalar' | undefined;
  private argsStart = -1;
  private argsSent = 0;
  raw = '';
  name: string | undefined;
  args: string | undefined;
  /** The arguments text as far as it is known (for streaming). */
  private argsSoFar = '';
  done = false;
  invalid = false;

  /** Feeds text; returns how many characters it consumed (it stops after the closing brace). */
  push(text: string): number {
    let i = 0;
    for (; i < text.length && !this.done && !this.invalid; i++) this.char(text[i]);
    if (this.argsKind === 'container' || this.argsKind === 'scalar') this.argsSoFar = this.raw.slice(this.argsStart).trimEnd();
    return i;
  }

  /** Arguments text not handed out yet (only once the name is known: clients need the name first). */
  takeArguments(): string {
    if (this.name === undefined) return '';
    const known = this.args ?? (this.argsKind === 'container' ? this.argsSoFar : '');
    const piece = known.slice(this.argsSent);
    this.argsSent = known.length;
    return piece;
  }

  private char(c: string): void {
    this.raw += c;
    const at = this.raw.length - 1;
    if (this.inString) {
      if (this.escape) this.escape = false;
      else if (c === '\\') this.escape = true;
      else if (c === '"') return this.closeString();
      if (this.depth === 1) this.stringText += c;
      return;
    }
    if (/\s/.test(c)) return;
    if (this.depth === 0) {
      if (c === '{') this.depth = 1;
      else this.invalid = true;
      return;
    }
    if (this.depth === 1 && this.expectValue) {
      this.expectValue = false;
      if (this.key !== undefined && ARGUMENT_KEYS.has(this.key) && this.args === undefined) {
        this.argsStart = at;
        this.argsKind = c === '{' || c === '[' ? 'container' : c === '"' ? 'string' : 'scalar';
      }
    }
    if (c === '"') {
      this.inString = true;
      this.stringText = '';
      return;
    }
    if (c === '{' || c === '[') {
      this.depth++;
      return;
    }
    if (c === '}' || c === ']') {
      this.depth--;
      if (this.depth === 1 && this.argsKind === 'container') this.endArgs(at + 1);
      if (this.depth === 0) {
        if (this.argsKind === 'scalar') this.endArgs(at);
        this.done = true;
      }
      return;
    }
    if (this.depth === 1 && c === ':') this.expectValue = true;
    else if (this.depth === 1 && c === ',') {
      if (this.argsKind === 'scalar') this.endArgs(at);
      this.key = undefined;
    }
  }

  private closeString(): void {
    this.inString = false;
    if (this.depth !== 1) return;
    let value: string;
    try {
      value = JSON.parse(`"${this.stringText}"`);
    } catch {
      this.invalid = true;
      return;
    }
    if (this.argsKind === 'string' && this.args === undefined && this.argsStart >= 0) {
      this.args = value; // arguments written as a JSON string: its content is the arguments text
      this.argsKind = undefined;
    } else if (this.key === undefined) {
      this.key = value;
    } else if (NAME_KEYS.has(this.key) && this.name === undefined) {
      this.name = value;
    }
  }

  private endArgs(end: number): void {
    this.args = this.raw.slice(this.argsStart, end).trim();
    this.argsKind = undefined;
  }
}

/**
 * Splits a reply into content and tool calls as its text arrives. `push` each delta, then `end()`;
 * each returns the pieces that became certain. Text that may still turn out to start a call is
 * held back until it is decided.
 */
export class ToolCallStream {
  private buffer = '';
  private mode: 'text' | 'undecided' | 'call' | 'after-call' | 'plain' = 'text';
  private scanner: CallScanner | undefined;
  private calls = 0;
  private started = false;
  /** Blank space right after a closing tag is dropped (it separates calls, it is not content). */
  private afterClose = false;

  constructor(private readonly format: ToolCallFormat) {
    if (format === 'json') this.mode = 'undecided';
  }

  /** How many calls have started. */
  get callCount(): number {
    return this.calls;
  }

  push(text: string): ToolCallPiece[] {
    this.buffer += text;
    const out: ToolCallPiece[] = [];
    for (let progress = true; progress && this.buffer; ) progress = this.step(out, false);
    return out;
  }

  end(): ToolCallPiece[] {
    const out: ToolCallPiece[] = [];
    for (let progress = true; progress && this.buffer; ) progress = this.step(out, true);
    if (this.mode === 'call' && this.scanner) this.finishCall(out, true);
    if (this.buffer) out.push({ kind: 'text', text: this.buffer });
    this.buffer = '';
    return merge(out);
  }

  /** One move of the state machine; false when it needs more text. */
  private step(out: ToolCallPiece[], final: boolean): boolean {
    switch (this.mode) {
      case 'plain':
        out.push({ kind: 'text', text: this.buffer });
        this.buffer = '';
        return false;
      case 'undecided': {
        // json format: a call only at the very start of the reply (after blank space).
        const trimmed = this.buffer.trimStart();
        if (!trimmed) return false;
        if (trimmed[0] === '[') {
          this.buffer = trimmed.slice(1);
          this.mode = 'after-call';
        } else if (trimmed[0] === '{') {
          this.buffer = trimmed;
          this.openCall();
        } else this.mode = 'plain';
        return true;
      }
      case 'text': {
        if (this.afterClose) {
          const rest = this.buffer.trimStart();
          if (!rest) {
            if (final) this.buffer = '';
            return false;
          }
          this.buffer = rest;
          this.afterClose = false;
        }
        const at = this.buffer.indexOf(OPEN);
        if (at >= 0) {
          if (at > 0) out.push({ kind: 'text', text: this.buffer.slice(0, at) });
          this.buffer = this.buffer.slice(at + OPEN.length);
          this.openCall();
          return true;
        }
        const keep = final ? 0 : heldPrefix(this.buffer, OPEN);
        if (this.buffer.length > keep) out.push({ kind: 'text', text: this.buffer.slice(0, this.buffer.length - keep) });
        this.buffer = this.buffer.slice(this.buffer.length - keep);
        return false;
      }
      case 'call': {
        const scanner = this.scanner!;
        const used = scanner.push(this.buffer);
        this.buffer = this.buffer.slice(used);
        if (scanner.invalid) {
          // Not a call after all: what was read is content.
          this.mode = this.format === 'hermes' ? 'text' : 'plain';
          out.push({ kind: 'text', text: (this.format === 'hermes' ? OPEN : '') + scanner.raw });
          this.scanner = undefined;
          return true;
        }
        this.emitProgress(out);
        if (!scanner.done) return false;
        this.finishCall(out, false);
        this.mode = 'after-call';
        return true;
      }
      case 'after-call': {
        // Between calls: the closing tag, separators (`;`, `,`, `]`), blank space, or the next call.
        const trimmed = this.buffer.replace(/^[\s;,\]]+/, '');
        if (this.format === 'hermes' && trimmed.startsWith(CLOSE)) {
          this.buffer = trimmed.slice(CLOSE.length);
          this.mode = 'text';
          this.afterClose = true;
          return true;
        }
        if (this.format === 'hermes' && !final && CLOSE.startsWith(trimmed)) return false;
        if (this.format === 'json' && trimmed.startsWith('{')) {
          this.buffer = trimmed;
          this.openCall();
          return true;
        }
        if (!trimmed) {
          this.buffer = '';
          return false;
        }
        this.buffer = trimmed;
        this.mode = this.format === 'hermes' ? 'text' : 'plain';
        return true;
      }
    }
  }

  private openCall(): void {
    this.scanner = new CallScanner();
    this.started = false;
    this.mode = 'call';
  }

  private emitProgress(out: ToolCallPiece[]): void {
    const scanner = this.scanner!;
    if (!this.started && scanner.name !== undefined) {
      this.started = true;
      out.push({ kind: 'start', call: this.calls++, name: scanner.name });
    }
    if (!this.started) return;
    const args = scanner.takeArguments();
    if (args) out.push({ kind: 'arguments', call: this.calls - 1, text: args });
  }

  private finishCall(out: ToolCallPiece[], cutShort: boolean): void {
    const scanner = this.scanner!;
    this.scanner = undefined;
    if (!this.started) {
      // No name: not a usable call, so it stays content.
      out.push({ kind: 'text', text: (this.format === 'hermes' ? OPEN : '') + scanner.raw });
      this.mode = this.format === 'hermes' ? 'text' : 'plain';
      return;
    }
    const rest = scanner.takeArguments();
    if (rest) out.push({ kind: 'arguments', call: this.calls - 1, text: rest });
    if (scanner.args === undefined && !cutShort) out.push({ kind: 'arguments', call: this.calls - 1, text: '{}' });
    out.push({ kind: 'end', call: this.calls - 1 });
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of `marker`. */
function heldPrefix(text: string, marker: string): number {
  for (let n = Math.min(text.length, marker.length - 1); n > 0; n--) if (marker.startsWith(text.slice(text.length - n))) return n;
  return 0;
}

/** Joins neighbouring text pieces. */
function merge(pieces: ToolCallPiece[]): ToolCallPiece[] {
  const out: ToolCallPiece[] = [];
  for (const p of pieces) {
    const last = out[out.length - 1];
    if (p.kind === 'text' && last?.kind === 'text') last.text += p.text;
    else out.push(p);
  }
  return out;
}

/** A whole reply split at once: its content (calls removed) and its calls. */
export function parseToolCalls(format: ToolCallFormat, text: string): { content: string; calls: Array<{ name: string; arguments: string }> } {
  const stream = new ToolCallStream(format);
  const pieces = [...stream.push(text), ...stream.end()];
  let content = '';
  const calls: Array<{ name: string; arguments: string }> = [];
  for (const p of pieces) {
    if (p.kind === 'text') content += p.text;
    else if (p.kind === 'start') calls[p.call] = { name: p.name, arguments: '' };
    else if (p.kind === 'arguments') calls[p.call].arguments += p.text;
  }
  return { content, calls };
}
