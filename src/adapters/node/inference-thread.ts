/**
 * The inference worker: owns the ONNX sessions and the KV caches, so that `session.run()`,
 * which blocks its thread, never blocks the HTTP event loop. It loads no transformers.js.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadCausalLM, loadEmbedder } from './ort-model.js';
import type { ForwardReply, WorkerInit, WorkerReady, WorkerRequest, WorkerResponse } from './thread-protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;

const model = await loadCausalLM({
  ...init.model,
  executionProviders: init.executionProviders,
  threads: init.threads,
  threadSleep: init.threadSleep,
  exactQuantized: init.exactQuantized,
  lookahead: init.lookahead,
});
const embedder = init.embedding
  ? await loadEmbedder(init.embedding.path, init.executionProviders, init.embedding.dimensions, init.threadSleep)
  : undefined;
port.postMessage({ ready: true, info: model.info, embeddingDimensions: embedder?.dimensions, attention: model.attention, steps: model.steps, matmul: model.matmul, checks: model.checks } satisfies WorkerReady);

let shared = new SharedArrayBuffer(0);

/** Copies logits rows into the shared buffer, growing it (and sending it along) when they do not fit. */
function share(rows: Float32Array[]): ForwardReply {
  const vocab = model.info.vocabSize;
  const bytes = rows.length * vocab * Float32Array.BYTES_PER_ELEMENT;
  const grown = bytes > shared.byteLength;
  if (grown) shared = new SharedArrayBuffer(Math.max(bytes, 2 * shared.byteLength));
  const view = new Float32Array(shared);
  rows.forEach((row, i) => view.set(row, i * vocab));
  return grown ? { rows: rows.length, shared } : { rows: rows.length };
}

async function handle(message: WorkerRequest): Promise<unknown> {
  switch (message.op) {
    case 'forward':
      return share(await model.forward(message.items));
    case 'fork':
      return model.fork(message.src, message.dst);
    case 'release':
      return model.release(message.seq);
    case 'hidden':
      return model.hiddenStates(message.inputs, message.adapter);
    case 'embed':
      if (!embedder) throw new Error('No embedding model is loaded.');
      return embedder.embed(message.inputs);
    case 'stats':
      return { liveSequences: model.liveSequences, ...model.counters };
    case 'dispose':
      await model.dispose();
      await embedder?.dispose();
      return undefined;
  }
}

// Requests are handled strictly in order: the engine never has two forward calls in flight.
let queue = Promise.resolve();
port.on('message', (message: WorkerRequest) => {
  queue = queue.then(async () => {
    try {
      const result = await handle(message);
      const transfer = Array.isArray(result) ? result.filter((r) => r instanceof Float32Array).map((r) => r.buffer as ArrayBuffer) : [];
      port.postMessage({ id: message.id, ok: true, result } satisfies WorkerResponse, transfer);
    } catch (error) {
      const e = error as Error;
      port.postMessage({ id: message.id, ok: false, error: { message: e.message, stack: e.stack } } satisfies WorkerResponse);
    }
  });
});
