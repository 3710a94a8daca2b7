/**
 * edgellm: OpenAI- and lmdeploy-compatible LLM serving as standard fetch handlers.
 * This entry is platform-neutral; `edgellm/node` adds the onnxruntime-node runtime and a server.
 * @module
 */
export { createApp, type App, type AppOptions } from './app/create-app.js';
export { createLoadingApp, loadError, type LoadingApp } from './app/loading-app.js';
export { InferenceError, isInferenceError, toErrorResponse, type ErrorType } from './errors.js';
export type { AssetSource } from './handlers/context.js';
export type { RequestLog } from './app/request-log.js';
export type { OrtCausalLMCounters } from './onnx/ort-causal-lm.js';
export type { GgufAccuracy } from './onnx/gguf-import.js';
export { createEngine, type EngineOptions } from './runtime/engine.js';
export type { Backend, BackendModelInfo, EmbeddingBackend, ForwardItem } from './runtime/backend.js';
export type { PromptLookupOptions } from './runtime/prompt-lookup.js';
export type { Tokenizer } from './runtime/tokenizer.js';
export { CHAT_TEMPLATES, COMPLETION_TEMPLATES, type ChatTemplate, type CompletionTemplate } from './runtime/templates.js';
export type * from './runtime/types.js';
export {
  CompiledConstraint, ConstraintError, choiceGrammar, grammarOf, jsonObjectGrammar, jsonSchemaGrammar, parseGbnf, parseRegex, primeJsonStrings,
  repeatGrammar, sampleConstrained, sequenceGrammar, SUPPORTED_SCHEMA_KEYWORDS, SUPPORTED_STRING_FORMATS, type ConstraintState, type Grammar,
} from './runtime/constraints/index.js';
export { tokenByteTable } from './model/token-bytes.js';
