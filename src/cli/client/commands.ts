/**
 * What one input line of `edgellm client` means: a message, or a slash command. Pure, so the
 * terminal loop and the piped loop read lines the same way.
 * @module
 */

export type Command =
  | { type: 'say'; text: string }
  | { type: 'reset' }
  /** text undefined: show the system prompt; null: clear it. */
  | { type: 'system'; text: string | null | undefined }
  /** args empty: show the parameters. */
  | { type: 'params'; args: string }
  | { type: 'help' }
  | { type: 'exit' }
  | { type: 'unknown'; name: string }
  | { type: 'empty' };

export const COMMANDS_HELP = `Commands:
  /params                       show the sampling parameters
  /params k=v [k=v ...]         set them: temperature top_p top_k min_p repetition_penalty
                                presence_penalty frequency_penalty max_tokens min_tokens seed
                                num_beams stop ignore_eos (k= goes back to the server's default;
                                quote values with spaces: stop="\\n\\n")
  /system [text]                show or set the system prompt (/system - clears it)
  /reset                        start a new conversation (also /clear)
  /help                         this help (also /?)
  /exit                         quit (also /quit, /bye, Ctrl-D)
A line starting with // sends the rest starting with one /. A line ending in \\ continues on the next.
`;

export function parseCommand(line: string): Command {
  if (line.startsWith('//')) return { type: 'say', text: line.slice(1) };
  if (!line.startsWith('/')) return line.trim() ? { type: 'say', text: line } : { type: 'empty' };
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(line.trimEnd())!;
  const [, name, rest] = match;
  switch (name.toLowerCase()) {
    case 'reset':
    case 'clear':
      return { type: 'reset' };
    case 'system':
      return { type: 'system', text: rest === '' ? undefined : rest === '-' ? null : rest };
    case 'params':
      return { type: 'params', args: rest };
    case 'help':
    case '?':
      return { type: 'help' };
    case 'exit':
    case 'quit':
    case 'bye':
      return { type: 'exit' };
    default:
      return { type: 'unknown', name: `/${name}` };
  }
}

/**
 * Joins continuation lines: a line ending in a backslash is not finished. Returns the finished
 * text, or undefined while more lines are needed (`pending` then holds what was read so far).
 */
export function joinContinuation(pending: string | undefined, line: string): { done?: string; pending?: string } {
  const text = pending === undefined ? line : `${pending}\n${line}`;
  if (text.endsWith('\\')) return { pending: text.slice(0, -1) };
  return { done: text };
}
