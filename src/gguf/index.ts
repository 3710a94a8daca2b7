/**
 * GGUF import, platform-neutral (no file system, no onnxruntime): read a file (reader), its weights
 * (quants), its tokenizer (tokenizer) and its architecture (config). The graph builder sits on top.
 * @module
 */
export {
  GGML_BLOCK, GGML_TYPES, GgufError, GgufTruncatedError, SUPPORTED_TYPES, metaNumber, metaOptionalNumber, metaString,
  readGguf, readGgufHeader, readGgufStream, tensorByteSize,
} from './reader.js';
export type { GgmlType, GgufFile, GgufTensor, GgufValue } from './reader.js';
export { HALF_TO_FLOAT, blockQuantToFloat, dequantize, toBlockQuant } from './quants.js';
export type { BlockQuant } from './quants.js';
export { SUPPORTED_PRE_TOKENIZERS, TOKEN_TYPE, eogTokenIds, ggufTokenizerFiles, mergesFromScores } from './tokenizer.js';
export type { GgufTokenizerFiles } from './tokenizer.js';
export { SUPPORTED_ARCHITECTURES, float32Decimal, ggufArchitecture, ggufModelConfig } from './config.js';
export type { GgufArchitecture } from './config.js';
