/**
 * Engine token logprobs -> OpenAI's two wire shapes: chat (`content: [{token, logprob, bytes,
 * top_logprobs}]`) and legacy completions (parallel `tokens`, `token_logprobs`, `top_logprobs`,
 * `text_offset` arrays).
 * @module
 */
import type { TokenLogprob } from '../../runtime/types.js';

export function toChatLogprobs(entries: TokenLogprob[]) {
  return entries.map((e) => ({
    token: e.text,
    logprob: e.logprob,
    bytes: e.bytes,
    top_logprobs: e.top.map((t) => ({ token: t.text, logprob: t.logprob, bytes: t.bytes })),
  }));
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

export function emptyCompletionLogprobs(): CompletionLogprobs {
  return { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
}

/** Appends entries; `offset` is where the first one's text starts in the choice's text. Returns the next offset. */
export function appendCompletionLogprobs(into: CompletionLogprobs, entries: TokenLogprob[], offset: number): number {
  for (const e of entries) {
    into.tokens.push(e.text);
    into.token_logprobs.push(e.logprob);
    into.top_logprobs.push(Object.fromEntries(e.top.map((t) => [t.text, t.logprob])));
    into.text_offset.push(offset);
    offset += e.text.length;
  }
  return offset;
}
