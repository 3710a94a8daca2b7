/**
 * Starts generations and waits for their `start` events, so that a bad request (unknown model,
 * prompt too long, busy session, full queue) still becomes an HTTP error status, not an error
 * inside a stream that already said 200.
 * @module
 */
import type { GenerateRequest, GenerationEvent, InferenceRuntime } from '../../runtime/types.js';
import { toWireError, type WireFields } from './wire-fields.js';

export type StartEvent = Extract<GenerationEvent, { type: 'start' }>;

export interface StartedGeneration {
  start: StartEvent;
  events: AsyncIterator<GenerationEvent>;
}

/** `fields` names the request fields in the endpoint's wire names, for the errors. */
export async function startGeneration(runtime: InferenceRuntime, request: GenerateRequest, fields: WireFields): Promise<StartedGeneration> {
  const events = runtime.generate(request)[Symbol.asyncIterator]();
  const first = await events.next().catch((error) => Promise.reject(toWireError(error, fields)));
  if (first.done || first.value.type !== 'start') throw new Error('runtime.generate() must emit a start event first');
  return { start: first.value, events };
}

/** Starts several prompts; if one fails to start, the others are cancelled. */
export async function startAll(runtime: InferenceRuntime, requests: GenerateRequest[], fields: WireFields): Promise<StartedGeneration[]> {
  const results = await Promise.allSettled(requests.map((r) => startGeneration(runtime, r, fields)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<StartedGeneration>).value);
  await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.events.return?.() : undefined)));
  throw failed.reason;
}

/** Interleaves several event streams as they produce, tagging each event with its stream number. */
export async function* merge(streams: AsyncIterator<GenerationEvent>[]): AsyncGenerator<[number, GenerationEvent]> {
  const pending = new Map<number, Promise<[number, IteratorResult<GenerationEvent>]>>();
  const pull = (i: number) => pending.set(i, streams[i].next().then((r) => [i, r] as [number, IteratorResult<GenerationEvent>]));
  streams.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const [i, result] = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      yield [i, result.value];
    }
  } finally {
    await Promise.all(streams.map((s) => s.return?.()));
  }
}
