/**
 * `edgellm client`: a terminal chat with a running server (lmdeploy's `serve api_client`).
 * In a terminal it prompts with readline and streams replies; Ctrl-C stops a reply, Ctrl-C on
 * an empty line or Ctrl-D quits. With stdin piped, each line is one message, stdout gets only
 * the replies, and the first failure ends it with status 1. Either way the /generate session is
 * ended on the way out so the server frees it.
 * @module
 */
import { createInterface } from 'node:readline';
import { UsageError } from '../cli-args.js';
import { CLIENT_HELP, parseClientArgs, type ClientArgs } from './client-args.js';
import { COMMANDS_HELP, joinContinuation, parseCommand, type Command } from './commands.js';
import { ChatHistory, GenerateSession, type Conversation, type TurnResult } from './conversations.js';
import { applyParams, formatParams, ParamError, type Params } from './params.js';
import { ClientError, createTransport, UnreachableError, type Transport } from './transport.js';

type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };

export interface ClientIO {
  input: Input;
  output: NodeJS.WritableStream;
  errors: NodeJS.WritableStream;
  /** A terminal conversation (prompts, Ctrl-C) rather than piped lines. */
  interactive: boolean;
  color: boolean;
}

/** How the two modes show things. */
interface Ui {
  replyStart(): void;
  text(text: string): void;
  replyEnd(note: string | undefined): void;
  /** Something the user should know that is not a reply (stderr when piped). */
  note(message: string): void;
  error(message: string): void;
  /** Output the user asked for (/help, /params). */
  info(text: string): void;
}

const EOF = Symbol('eof');

export function finishNote(result: TurnResult, params: Params, mode: 'generate' | 'chat'): string | undefined {
  if (result.interrupted) return 'interrupted';
  if (result.finishReason !== 'length') return undefined;
  // lmdeploy's FAQ: a session whose history fills the context answers "length" with nothing.
  if (mode === 'generate' && result.text === '' && !result.tokens) {
    return 'the conversation fills the model context, so there is no room for a reply: /reset starts a new one';
  }
  if (params.max_tokens !== undefined) return `stopped at max_tokens=${params.max_tokens}`;
  return "stopped at the server's token limit; /params max_tokens=N for longer replies";
}

/**
 * Writes a reply as it streams. Leading whitespace is not shown: SentencePiece models start a
 * reply with a space, and a line should not.
 */
function replyWriter(output: NodeJS.WritableStream) {
  let last = ''; // the last piece written; '' until the reply shows something
  return {
    start: () => {
      last = '';
    },
    text: (text: string) => {
      const visible = last ? text : text.trimStart();
      if (!visible) return;
      output.write(visible);
      last = visible;
    },
    /** Ends the reply's last line; an empty reply is an empty line. */
    end: () => {
      if (!last.endsWith('\n')) output.write('\n');
    },
  };
}

function terminalUi(io: ClientIO): Ui {
  const paint = (code: string, s: string) => (io.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const reply = replyWriter(io.output);
  return {
    replyStart: reply.start,
    text: reply.text,
    replyEnd: (note) => {
      reply.end();
      if (note) io.output.write(`${paint('2', `[${note}]`)}\n`);
      io.output.write('\n');
    },
    note: (message) => io.output.write(`${paint('2', `[${message}]`)}\n`),
    error: (message) => io.errors.write(`${paint('31', 'error:')} ${message}\n`),
    info: (text) => io.output.write(text.endsWith('\n') ? text : `${text}\n`),
  };
}

/** Piped: stdout gets the replies only, a blank line between them; everything else goes to stderr. */
function pipedUi(io: ClientIO): Ui {
  let replies = 0;
  const reply = replyWriter(io.output);
  const say = (message: string) => io.errors.write(`edgellm: ${message}\n`);
  return {
    replyStart: () => {
      if (replies++ > 0) io.output.write('\n');
      reply.start();
    },
    text: reply.text,
    replyEnd: (note) => {
      reply.end();
      if (note) say(note);
    },
    note: say,
    error: say,
    info: (text) => io.errors.write(text.endsWith('\n') ? text : `${text}\n`),
  };
}

interface Session {
  conversation: Conversation;
  mode: 'generate' | 'chat';
  params: Params;
  ui: Ui;
}

/** Runs one command. Server failures are thrown as ClientErrors; local mistakes return 'failed'. */
async function execute(command: Command, s: Session, signal?: AbortSignal): Promise<'ok' | 'failed' | 'exit'> {
  const { conversation, ui } = s;
  switch (command.type) {
    case 'empty':
      return 'ok';
    case 'say': {
      ui.replyStart();
      const result = await conversation.send(command.text, s.params, ui.text, signal);
      ui.replyEnd(finishNote(result, s.params, s.mode));
      if (result.notice) ui.note(result.notice);
      return 'ok';
    }
    case 'reset':
      await conversation.reset();
      ui.note(`new conversation (${conversation.label})`);
      return 'ok';
    case 'system':
      if (command.text === undefined) {
        ui.info(conversation.system === undefined ? 'no system prompt' : `system prompt: ${conversation.system}`);
        return 'ok';
      }
      conversation.system = command.text ?? undefined;
      ui.note(`system prompt ${command.text === null ? 'cleared' : 'set'}; ${conversation.systemNote()}`);
      return 'ok';
    case 'params':
      if (!command.args.trim()) {
        ui.info(formatParams(s.params) || "no parameters set: the server's defaults apply");
        return 'ok';
      }
      try {
        s.params = applyParams(s.params, command.args);
      } catch (error) {
        if (!(error instanceof ParamError)) throw error;
        ui.error(`${error.message} (nothing changed)`);
        return 'failed';
      }
      ui.note(`params: ${formatParams(s.params) || "the server's defaults"}`);
      return 'ok';
    case 'help':
      ui.info(COMMANDS_HELP);
      return 'ok';
    case 'exit':
      return 'exit';
    case 'unknown':
      ui.error(`unknown command ${command.name}: /help lists the commands (// sends a line starting with /)`);
      return 'failed';
  }
}

/** Waits while /health says the model is loading, then checks the key and the model on /v1/models. */
async function connect(transport: Transport, model: string | undefined, ui: Ui, signal: AbortSignal): Promise<string[]> {
  const deadline = Date.now() + 10 * 60_000;
  for (let told = false; ; told = true) {
    const health = await transport.request('/health', { accept: [404, 503], signal });
    const body = (await health.json().catch(() => ({}))) as { status?: string };
    if (health.status !== 503) break;
    if (body.status !== 'loading') throw new ClientError(`the server at ${transport.url} is not serving (${body.status ?? 'status 503'})`);
    if (!told) ui.note('the server is still loading its model; waiting...');
    if (Date.now() > deadline) throw new ClientError(`the server at ${transport.url} is still loading its model after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (signal.aborted) throw new ClientError('interrupted');
  }
  const response = await transport.request('/v1/models', { accept: [404], signal });
  const list = (await response.json().catch(() => ({}))) as { data?: Array<{ id?: unknown }> };
  const ids = Array.isArray(list.data) ? list.data.map((m) => m?.id).filter((id): id is string => typeof id === 'string') : [];
  if (model && ids.length && !ids.includes(model)) {
    throw new ClientError(`the server at ${transport.url} does not serve '${model}' (it serves ${ids.join(', ')})`);
  }
  return ids;
}

/**
 * One line from the terminal, with editing and history. A fresh readline per prompt, closed
 * while a reply streams, so keys typed meanwhile do not echo into the reply. Pasted text holds
 * several lines in one read: the first is returned, the others go to `queue`.
 */
function readLine(
  io: ClientIO,
  prompt: string,
  history: string[],
  queue: string[],
  typeAhead: string,
  shutdown: AbortSignal,
): Promise<string | typeof EOF> {
  const rl = createInterface({ input: io.input, output: io.output, terminal: true, history: [...history], historySize: 500, removeHistoryDuplicates: true });
  return new Promise((resolve) => {
    let settled = false;
    let first: string | undefined;
    const finish = (value: string | typeof EOF) => {
      if (settled) return;
      settled = true;
      shutdown.removeEventListener('abort', onShutdown);
      rl.close();
      resolve(value);
    };
    const onShutdown = () => finish(EOF);
    shutdown.addEventListener('abort', onShutdown);
    rl.on('history', (lines: string[]) => history.splice(0, history.length, ...lines));
    rl.on('line', (line: string) => {
      if (first !== undefined) return void queue.push(line);
      first = line;
      // The rest of a paste arrives in this same read: let readline hand it over before closing.
      setImmediate(() => finish(line));
    });
    rl.on('close', () => finish(EOF)); // Ctrl-D on an empty line
    rl.on('SIGINT', () => {
      // Ctrl-C clears a half-typed line, as shells do; on an empty line it quits.
      if (rl.line) {
        rl.write(null, { ctrl: true, name: 'e' });
        rl.write(null, { ctrl: true, name: 'u' });
        return;
      }
      io.output.write('\n');
      finish(EOF);
    });
    rl.setPrompt(prompt);
    rl.prompt();
    if (typeAhead) rl.write(typeAhead);
  });
}

/**
 * While a reply streams: raw keys, Ctrl-C aborts it. Returns a function that stops watching and
 * gives back what was typed meanwhile (up to the first Enter), for the next prompt.
 */
function watchKeys(input: Input, onInterrupt: () => void): () => string {
  let typed = '';
  let entered = false;
  const onData = (data: Buffer | string) => {
    const text = data.toString();
    if (text.includes('\x03')) return onInterrupt();
    // Escape sequences (arrows, ...) would reach the prompt as literal text: drop them.
    if (text.includes('\x1b')) return;
    for (const char of text) {
      if (entered) return;
      if (char === '\x7f' || char === '\b') typed = typed.slice(0, -1);
      else if (char === '\r' || char === '\n') {
        typed += '\r';
        entered = true;
      } else if (!/\p{Cc}/u.test(char)) typed += char;
    }
  };
  input.setRawMode?.(true);
  input.on('data', onData);
  input.resume();
  return () => {
    input.off('data', onData);
    input.setRawMode?.(false);
    input.pause();
    return typed;
  };
}

async function terminalLoop(io: ClientIO, s: Session, shutdown: AbortSignal, current: { turn?: AbortController }): Promise<void> {
  const history: string[] = [];
  const queue: string[] = [];
  let pending: string | undefined;
  let typeAhead = '';
  while (!shutdown.aborted) {
    const prompt = pending === undefined ? '> ' : '... ';
    let line: string | typeof EOF;
    if (queue.length > 0) {
      line = queue.shift()!;
      io.output.write(`${prompt}${line}\n`);
    } else {
      line = await readLine(io, prompt, history, queue, typeAhead, shutdown);
      typeAhead = '';
    }
    if (line === EOF) return;
    const joined = joinContinuation(pending, line);
    pending = joined.pending;
    if (joined.done === undefined) continue;
    const turn = new AbortController();
    current.turn = turn;
    const stopWatching = watchKeys(io.input, () => {
      turn.abort();
      queue.length = 0; // Ctrl-C stops the rest of a paste too
    });
    try {
      if ((await execute(parseCommand(joined.done), s, turn.signal)) === 'exit') return;
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      // A failed turn leaves the conversation as it was; the user can retry or /reset.
      s.ui.error(error.message);
    } finally {
      current.turn = undefined;
      typeAhead = stopWatching();
    }
  }
}

async function pipedLoop(io: ClientIO, s: Session, shutdown: AbortSignal): Promise<number> {
  const rl = createInterface({ input: io.input, terminal: false, crlfDelay: Number.POSITIVE_INFINITY });
  const onShutdown = () => rl.close();
  shutdown.addEventListener('abort', onShutdown);
  let pending: string | undefined;
  const run = async (text: string): Promise<number | undefined> => {
    try {
      const outcome = await execute(parseCommand(text), s, shutdown);
      if (outcome === 'failed') return 1;
      if (outcome === 'exit') return 0;
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      s.ui.error(error.message);
      return 1;
    }
    return undefined;
  };
  try {
    for await (const line of rl) {
      const joined = joinContinuation(pending, line);
      pending = joined.pending;
      if (joined.done === undefined) continue;
      const code = await run(joined.done);
      if (code !== undefined) return code;
      if (shutdown.aborted) return 1;
    }
    // Input that ended inside a continuation is still a message.
    return (pending !== undefined && (await run(pending))) || 0;
  } finally {
    shutdown.removeEventListener('abort', onShutdown);
    rl.close();
  }
}

const SIGNAL_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

/** Runs the client until the user quits or input ends; resolves to the exit status. */
export async function runClient(args: ClientArgs, io: ClientIO): Promise<number> {
  const ui = io.interactive ? terminalUi(io) : pipedUi(io);
  const shutdown = new AbortController();
  const current: { turn?: AbortController } = {};
  let signalCode: number | undefined;
  const handlers = Object.entries(SIGNAL_CODES).map(([signal, code]) => {
    const handler = () => {
      // In a terminal, keyboard Ctrl-C reaches readline, not this; a signal here stops the reply first.
      if (signal === 'SIGINT' && io.interactive && current.turn) return current.turn.abort();
      signalCode = code;
      shutdown.abort();
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });

  let conversation: Conversation | undefined;
  try {
    const transport = createTransport({ url: args.url, apiKey: args.apiKey });
    const models = await connect(transport, args.model, ui, shutdown.signal);
    conversation = args.chat
      ? new ChatHistory(transport, { model: args.model, system: args.system })
      : new GenerateSession(transport, { model: args.model, system: args.system, sessionId: args.sessionId });
    const session: Session = { conversation, mode: args.chat ? 'chat' : 'generate', params: args.params, ui };
    let code = 0;
    if (io.interactive) {
      const model = args.model ?? models[0] ?? "the server's model";
      ui.info(`edgellm client: ${transport.url}, ${model}, ${conversation.label}. /help for commands, Ctrl-D to quit.`);
      await terminalLoop(io, session, shutdown.signal, current);
    } else {
      code = await pipedLoop(io, session, shutdown.signal);
    }
    return signalCode ?? code;
  } catch (error) {
    if (shutdown.signal.aborted) return signalCode ?? 1;
    if (!(error instanceof ClientError)) throw error;
    ui.error(error.message);
    return 1;
  } finally {
    for (const off of handlers) off();
    await conversation?.end().catch((error: Error) => {
      // A server that is gone has forgotten the session anyway; the failure was already said.
      if (!(error instanceof UnreachableError)) ui.error(`could not end ${conversation!.label} on the server: ${error.message}`);
    });
  }
}

/** `edgellm client ...` from the command line. */
export async function clientCommand(argv: string[]): Promise<number> {
  let args: ClientArgs;
  try {
    args = parseClientArgs(argv, process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`edgellm: ${error.message}\nRun 'edgellm client --help' for the options.\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(CLIENT_HELP);
    return 0;
  }
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  return runClient(args, {
    input: process.stdin,
    output: process.stdout,
    errors: process.stderr,
    interactive,
    color: interactive && !process.env.NO_COLOR,
  });
}
