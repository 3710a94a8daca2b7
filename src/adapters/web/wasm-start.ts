/**
 * onnxruntime-web's wasm, started before the model's session so each has its own progress step:
 * the binary read through the file cache (when there is one and its URL is known; the runtime reads
 * it while the model files download) and handed to onnxruntime-web as `env.wasm.wasmBinary`, then
 * compiled and started by creating a one-node session.
 * @module
 */
import type * as OrtCommon from 'onnxruntime-common';
import { MemorySink, OnnxGraphWriter, TensorType } from '../../onnx/onnx-graph-writer.js';
import type { FetchLike } from './binding-fetch.js';
import { letProgressOut, type ProgressListener } from './load-progress.js';

type OrtWithEnv = Pick<typeof OrtCommon, 'InferenceSession'> & { env: OrtCommon.Env };

/** A model of one Identity node: creating its session compiles and starts the wasm, and costs nothing else. */
export function identityModel(): Uint8Array {
  const graph = new OnnxGraphWriter(new MemorySink('unused.data'));
  graph.input('x', TensorType.FLOAT, [1]);
  graph.op('Identity', ['x'], {}, { outputs: ['y'] });
  graph.output('y', TensorType.FLOAT, [1]);
  return graph.finish('edgellm-wasm-start', 13);
}

/** onnxruntime-web's wasm binary, read through the file cache's fetch. */
export async function readWasm(url: string, fetcher: FetchLike): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetcher(url);
  } catch (error) {
    throw new Error(`Could not fetch onnxruntime-web's wasm from ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`Could not fetch onnxruntime-web's wasm from ${url}: HTTP ${response.status}.`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** Hands the binary (when read here) to onnxruntime-web, then compiles and starts it with a one-node session. */
export async function startWasm(
  ort: OrtWithEnv,
  options: { executionProviders: string[]; wasmBinary?: Uint8Array; onProgress: ProgressListener },
): Promise<void> {
  const { onProgress } = options;
  if (options.wasmBinary && !ort.env.wasm.wasmBinary) ort.env.wasm.wasmBinary = options.wasmBinary;
  const started = Date.now();
  onProgress({ stage: 'wasm', done: false, message: "Compiling and starting onnxruntime-web's wasm" });
  await letProgressOut();
  const session = await ort.InferenceSession.create(identityModel(), { executionProviders: options.executionProviders });
  await session.release();
  const ms = Date.now() - started;
  onProgress({ stage: 'wasm', done: true, ms, message: `Started onnxruntime-web's wasm in ${(ms / 1000).toFixed(1)} s` });
}
