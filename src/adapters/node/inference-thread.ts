/**
 * The inference worker: owns the ONNX sessions and the KV caches, so that `session.run()`,
 * which blocks its thread, never blocks the HTTP event loop. It loads no transformers.js.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadCausalLM, loadEmbedder } from './ort-model.js';
import { exposedGc, externalBytes, OutputGarbage } from './output-garbage.js';
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

// onnxruntime-node's copies of every output, collected once they add up (see output-garbage.ts);
// EDGELLM_GC_MB sets how many MB of them may pile up between collections (0: leave it to V8).
const gcMb = Number(process.env.EDGELLM_GC_MB ?? 64);
const gc = gcMb > 0 ? exposedGc() : undefined;
const garbage = gc ? new OutputGarbage({ gc, external: externalBytes, thresholdBytes: gcMb * 2 ** 20, idleMs: 1000 }) : undefined;

/**
 * Copies each item's logits into the shared buffer, one after another (an item with `allLogits`
 * has a row per token, e.g. a draft's K + 1), growing it (and sending it along) when they do not fit.
 */
function share(results: Float32Array[]): ForwardReply {
  const floats = results.reduce((n, r) => n + r.length, 0);
  const bytes = floats * Float32Array.BYTES_PER_ELEMENT;
  const grown = bytes > shared.byteLength;
  if (grown) shared = new SharedArrayBuffer(Math.max(bytes, 2 * shared.byteLength));
  const view = new Float32Array(shared);
  let offset = 0;
  for (const result of results) {
    view.set(result, offset);
    offset += result.length;
  }
  const rows = floats / model.info.vocabSize;
  return grown ? { rows, shared } : { rows };
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
    // after the reply: the engine already has it. A drafted step (allLogits) is a decode step, not a prefill.
    const long = message.op === 'forward' ? message.items.some((item) => item.tokens.length > 1 && !item.allLogits) : message.op === 'hidden' || message.op === 'embed';
    garbage?.after(long);
  });
});
