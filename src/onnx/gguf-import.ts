/**
 * A GGUF file -> the files of a transformers.js-layout model folder (config.json, tokenizer.json,
 * tokenizer_config.json, generation_config.json, onnx/<model>.onnx + its external data), so the
 * result loads as any model. Platform-neutral: the Node adapter writes the files into its cache,
 * a web host can keep them in memory.
 * @module
 */
import { ggufModelConfig } from '../gguf/config.js';
import { dequantize, toBlockQuant } from '../gguf/quants.js';
import { SUPPORTED_TYPES, type GgufFile } from '../gguf/reader.js';
import { ggufTokenizerFiles } from '../gguf/tokenizer.js';
import { onnxFileName } from '../model/model-config.js';
import { buildDecoderGraph, decoderSpec, describeMapping, type SourceTensor } from './gguf-decoder-graph.js';
import type { ExternalDataSink } from './onnx-graph-writer.js';
import type { LoraStack } from '../lora/lora-stack.js';

/** Part of the cache key: bump it whenever the converted files would change. */
// 2: q/k/v and gate/up packed into one MatMulNBits each.
// 3: token strings keep a leading U+FEFF (Gemma 3's "\uFEFF#" had become a second "#" in tokenizer.json).
// 4: a logits_to_keep input: logits for the last positions only.
// 5: grouped attention (query heads stacked per KV head): no Expand of the cache, no one-row MatMul;
//    the rotary as com.microsoft.RotaryEmbedding.
export const GGUF_IMPORTER_VERSION = 5;

/**
 * `q4`: the GGUF's own quantization mapped exactly (MatMulNBits; the transformers.js name of the
 * file is model_q4.onnx although 8-bit blocks may be in it); `fp32`: every weight dequantized.
 */
export type GgufDtype = 'q4' | 'fp32';

/**
 * `exact`: 4-bit MatMulNBits compute in float32 (accuracy_level 0), the arithmetic the reference
 * outputs were checked with; `int8`: 4-bit MatMulNBits quantize activations to int8 (accuracy_level 4),
 * faster on CPUs with int8 dot products, greedy text diverges from llama.cpp's sooner.
 * 8-bit blocks always use level 4: onnxruntime has no fast float32 kernel for them.
 */
export type GgufAccuracy = 'exact' | 'int8';

export interface GgufModelJson {
  config: Record<string, unknown>;
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
}

/** The JSON files of the folder: config (preferring `dtype`'s ONNX file), tokenizer, generation config. */
export function ggufModelJson(file: GgufFile, dtype: GgufDtype = 'q4'): GgufModelJson {
  const config = ggufModelConfig(file) as Record<string, unknown>;
  const existing = (config['transformers.js_config'] ?? {}) as Record<string, unknown>;
  config['transformers.js_config'] = { ...existing, dtype, use_external_data_format: { [onnxFileName(dtype)]: 1 } };
  const { tokenizerJson, tokenizerConfig, generationConfig } = ggufTokenizerFiles(file);
  return {
    config,
    tokenizer: tokenizerJson as Record<string, unknown>,
    tokenizerConfig: tokenizerConfig as Record<string, unknown>,
    generationConfig: generationConfig as Record<string, unknown>,
  };
}

export interface GgufConvertOptions {
  dtype?: GgufDtype;
  accuracy?: GgufAccuracy;
  /** Progress: called with each tensor as it is converted. */
  onTensor?: (tensor: SourceTensor) => void;
  /** LoRA adapters applied at run time (`--lora-modules`; see gguf-lora-graph.ts). */
  lora?: LoraStack;
}

export interface GgufConversion {
  /** The ONNX model bytes (weights are in the sink). */
  model: Uint8Array;
  /** onnx/<onnxName> */
  onnxName: string;
  /** One line per kind of mapping (exact block form, float32, ...). */
  mapping: string[];
}

/** The external data file beside onnx/<name>. */
export const ggufDataName = (dtype: GgufDtype) => `${onnxFileName(dtype)}.data`;

/**
 * Builds the ONNX decoder of `file`, its weights written to `sink` (whose location must be
 * `ggufDataName(dtype)`). Refuses unsupported architectures and tensor types by name.
 */
export function convertGguf(file: GgufFile, config: Record<string, unknown>, sink: ExternalDataSink, options: GgufConvertOptions = {}): GgufConversion {
  const dtype = options.dtype ?? 'q4';
  const spec = decoderSpec(config);
  const unsupported = [...new Set(file.tensors.filter((t) => !t.supported).map((t) => t.type))];
  if (unsupported.length) {
    throw new Error(`GGUF tensor type${unsupported.length > 1 ? 's' : ''} ${unsupported.join(', ')} cannot be imported (supported: ${[...SUPPORTED_TYPES].join(', ')}).`);
  }
  const built = buildDecoderGraph(spec, file.tensors, { dequantize, toBlockQuant }, sink, {
    dtype: dtype === 'fp32' ? 'fp32' : 'quantized',
    accuracyLevel4: options.accuracy === 'int8' ? 4 : 0,
    accuracyLevel8: 4,
    onTensor: options.onTensor,
    lora: options.lora,
  });
  return { model: built.model, onnxName: onnxFileName(dtype), mapping: describeMapping(built.mapping) };
}
