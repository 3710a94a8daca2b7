/**
 * Parses `edgellm client [url] [options]`. `_` and `-` are interchangeable, as for `serve`.
 * @module
 */
import { parseFlags, UsageError } from '../cli-args.js';
import { applyParams, ParamError, type Params } from './params.js';

export const DEFAULT_URL = 'http://127.0.0.1:23333';

export const CLIENT_HELP = `Usage: edgellm client [url] [options]

Chat with a running edgellm (or lmdeploy-compatible) server from a terminal. Replies stream as
they are generated. With stdin not a terminal, each input line is one message and only the
replies are printed (separated by a blank line); the exit status is 1 if the server is
unreachable or answers an error.

  url                      the server (default ${DEFAULT_URL}); host:port works too
  --chat                   use /v1/chat/completions, the client keeping the history
                           (default: a /generate session, the server keeping it)
  --model NAME             the model to ask (default: the server's)
  --api-key KEY            Bearer key for a server started with --api-keys (default: $EDGELLM_API_KEY)
  --session-id N           /generate session id (default: random); a new conversation starts on it
  --system TEXT            system prompt
  --max-tokens N           longest reply in tokens (default: the server's; 512 for /generate)
  --params 'k=v ...'       sampling parameters, as /params takes them (e.g. 'temperature=0.7 top_k=40')
  -h, --help               this help

In the chat: Enter sends, Ctrl-C stops a reply, Ctrl-C on an empty line or Ctrl-D quits.
`;

const OPTIONS = {
  chat: { type: 'boolean' },
  model: { type: 'string' },
  'api-key': { type: 'string' },
  'session-id': { type: 'string' },
  system: { type: 'string' },
  'max-tokens': { type: 'string' },
  params: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ClientArgs {
  help: boolean;
  url: string;
  chat: boolean;
  model?: string;
  apiKey?: string;
  sessionId?: number;
  system?: string;
  params: Params;
}

export function parseClientArgs(argv: string[], env: Record<string, string | undefined> = {}): ClientArgs {
  const parsed = parseFlags(argv, OPTIONS);
  const v = parsed.values;
  if (parsed.positionals.length > 1) throw new UsageError(`expected one server URL, got: ${parsed.positionals.join(' ')}`);
  let params: Params = {};
  try {
    for (const text of v.params ?? []) params = applyParams(params, text);
    if (v['max-tokens'] !== undefined) params = applyParams(params, `max_tokens=${v['max-tokens']}`);
  } catch (error) {
    if (error instanceof ParamError) throw new UsageError(error.message);
    throw error;
  }
  let sessionId: number | undefined;
  if (v['session-id'] !== undefined) {
    sessionId = /^\d+$/.test(v['session-id']) ? Number(v['session-id']) : Number.NaN;
    if (!Number.isSafeInteger(sessionId)) throw new UsageError(`--session-id must be a non-negative integer (got '${v['session-id']}')`);
    if (v.chat) throw new UsageError('--session-id is for /generate sessions; --chat keeps no session');
  }
  return {
    help: v.help ?? false,
    url: parsed.positionals[0] ?? DEFAULT_URL,
    chat: v.chat ?? false,
    model: v.model,
    apiKey: v['api-key'] ?? (env.EDGELLM_API_KEY || undefined),
    sessionId,
    system: v.system,
    params,
  };
}
