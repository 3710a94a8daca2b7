/**
 * Turns a generation's text deltas into content and tool-call events, per choice: what the chat
 * endpoint streams as `delta.content` and `delta.tool_calls`. A choice that called a tool and
 * stopped by itself finishes with reason `tool_calls`.
 * @module
 */
import type { GenerationEvent } from '../types.js';
import { ToolCallStream, type ToolCallFormat, type ToolCallPiece } from './tool-call-parser.js';

const callId = () => `call_${crypto.randomUUID().replaceAll('-', '').slice(0, 24)}`;

/** Wraps `emit` so that deltas are split into content and `toolCall` events. */
export function withToolCalls(format: ToolCallFormat, emit: (event: GenerationEvent) => void): (event: GenerationEvent) => void {
  const streams = new Map<number, ToolCallStream>();
  const streamOf = (index: number) => {
    let stream = streams.get(index);
    if (!stream) streams.set(index, (stream = new ToolCallStream(format)));
    return stream;
  };
  const ids = new Map<string, string>();
  const forward = (index: number, pieces: ToolCallPiece[], tokens: number[], logprobs: Extract<GenerationEvent, { type: 'delta' }>['logprobs']) => {
    const text = pieces.flatMap((p) => (p.kind === 'text' ? [p.text] : [])).join('');
    // The delta keeps its tokens (and logprobs), whatever part of its text went into a call.
    if (text || tokens.length) emit({ type: 'delta', index, text, tokens, ...(logprobs && { logprobs }) });
    for (const p of pieces) {
      if (p.kind === 'start') {
        const id = callId();
        ids.set(`${index}/${p.call}`, id);
        emit({ type: 'toolCall', index, call: p.call, id, name: p.name });
      } else if (p.kind === 'arguments') emit({ type: 'toolCall', index, call: p.call, arguments: p.text });
    }
  };
  return (event) => {
    if (event.type === 'delta') return forward(event.index, streamOf(event.index).push(event.text), event.tokens, event.logprobs);
    if (event.type === 'finish') {
      const stream = streamOf(event.index);
      forward(event.index, stream.end(), [], undefined);
      return emit(stream.callCount > 0 && event.reason === 'stop' ? { ...event, reason: 'tool_calls' } : event);
    }
    emit(event);
  };
}
