/**
 * A GGUF model for the web adapter: the file fetched from a URL (or a Workers binding), converted in
 * memory with the same builder as the Node adapter's cache, into what a model folder would give:
 * config, tokenizer files and the ONNX model with its external data.
 * @module
 */
import { readGgufStream } from '../../gguf/reader.js';
import type { Dtype } from '../../model/model-config.js';
import { convertGguf, ggufDataName, ggufModelJson, type GgufAccuracy } from '../../onnx/gguf-import.js';
import { MemorySink } from '../../onnx/onnx-graph-writer.js';
import { decoderSpec } from '../../onnx/gguf-decoder-graph.js';
import type { GgufLora } from '../../lora/gguf-merge.js';
import { stackLoras } from '../../lora/lora-stack.js';
import type { FetchLike } from './binding-fetch.js';
import { letProgressOut, type ProgressListener } from './load-progress.js';
import { ggufMemoryEstimate } from './memory-estimate.js';
import { formatBytes, type MemoryBudget } from './model-files.js';

/** A model given as a .gguf URL or path (query strings allowed). */
export const isGgufUrl = (model: string) => /\.gguf([?#].*)?$/i.test(model);

export interface GgufSource {
  url: string;
  /** The file name without .gguf: the model's default name. */
  name: string;
  dtype: Dtype;
  config: Record<string, any>;
  generation: Record<string, any>;
  tokenizerJson: Record<string, any>;
  tokenizerConfig: Record<string, any>;
  onnx: { path: string; bytes: Uint8Array; externalData: Array<{ path: string; data: Uint8Array }> };
  mapping: string[];
}

export async function loadGgufSource(
  model: string,
  baseUrl: string | URL | undefined,
  fetcher: FetchLike,
  budget: MemoryBudget,
  options: {
    dtype?: Dtype;
    accuracy?: GgufAccuracy;
    /** onnxruntime-web runs on wasm (its memory grows with the graph). */
    onWasm?: boolean;
    onProgress?: ProgressListener;
    /** Adapters applied at run time (names are model ids). */
    loras?: GgufLora[];
  } = {},
): Promise<GgufSource> {
  if (options.dtype && options.dtype !== 'q4' && options.dtype !== 'fp32') {
    throw new Error(`dtype ${options.dtype} does not apply to a GGUF model: leave it out (its own quantization, mapped exactly) or use fp32.`);
  }
  const dtype = options.dtype === 'fp32' ? 'fp32' : 'q4';
  const base = baseUrl ?? (globalThis as { location?: { href: string } }).location?.href;
  if (!/^[a-z][a-z\d+.-]*:/i.test(model) && !base) throw new Error(`Model "${model}" is not a URL and there is no base URL to resolve it against.`);
  const url = new URL(model, base).href;
  let response: Response;
  try {
    response = await fetcher(url);
  } catch (error) {
    throw new Error(`Could not fetch the GGUF model ${model} from ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`Could not fetch the GGUF model ${model} from ${url}: HTTP ${response.status}.`);
  }
  // The header says what the file, its converted graph and the wasm's growth will cost: a model
  // over the budget is refused before its tensor data are read.
  const file = await readGgufStream(response, (header) => {
    const e = ggufMemoryEstimate(header, dtype, options.onWasm ?? true);
    const how = e.growth
      ? `the file, the ONNX graph converted from it (about ${formatBytes(e.graphBytes)}), onnxruntime-web's wasm growth of ${e.growth} x that graph, ` +
        `and ${formatBytes(e.baseBytes)} the wasm memory starts with`
      : `the file and the ONNX graph converted from it (about ${formatBytes(e.graphBytes)})`;
    budget.reserve(model, e.fileBytes, { baseBytes: e.baseBytes, bytes: e.total - e.baseBytes }, how, 'serve a smaller GGUF (fewer parameters or fewer bits)');
  });
  const started = Date.now();
  if (options.onProgress) {
    options.onProgress({ stage: 'gguf', done: false, message: `Converting ${model} to an ONNX graph` });
    await letProgressOut();
  }
  const json = ggufModelJson(file, dtype);
  const sink = new MemorySink(ggufDataName(dtype));
  const lora = options.loras?.length ? stackLoras(decoderSpec(json.config), file.tensors, options.loras) : undefined;
  const conversion = convertGguf(file, json.config, sink, { dtype, accuracy: options.accuracy, lora });
  const ms = Date.now() - started;
  options.onProgress?.({ stage: 'gguf', done: true, ms, message: `Converted ${model} in ${(ms / 1000).toFixed(1)} s` });
  return {
    url,
    name: decodeURIComponent(new URL(url).pathname.split('/').pop()!.replace(/\.gguf$/i, '')),
    dtype,
    config: json.config,
    generation: json.generationConfig,
    tokenizerJson: json.tokenizer,
    tokenizerConfig: json.tokenizerConfig,
    onnx: { path: conversion.onnxName, bytes: conversion.model, externalData: [{ path: sink.location, data: sink.bytes() }] },
    mapping: [...(lora?.lines ?? []), ...conversion.mapping],
  };
}
