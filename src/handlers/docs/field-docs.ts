/**
 * One line of documentation per request field, per endpoint, for the OpenAPI document. The fields
 * themselves come from the zod schemas; a test fails when a schema gains a field that has no line
 * here, so the docs cannot silently fall behind the handlers.
 * @module
 */

import { CONSTRAINT_DOCS } from '../shared/constraint-fields.js';

const SAMPLING: Record<string, string> = {
  temperature: "Sampling temperature, 0 = greedy. Default 1 (0.8 for /generate) or the model's generation_config.json.",
  top_p: 'Nucleus sampling: sample among the most likely tokens whose probabilities sum to top_p.',
  top_k: 'Sample among the top_k most likely tokens (0 or -1: no limit).',
  min_p: 'Drop tokens less likely than min_p times the most likely one.',
  repetition_penalty: 'CTRL-style penalty on tokens already in the prompt or output (1: off).',
  presence_penalty: 'OpenAI presence penalty over the output.',
  frequency_penalty: 'OpenAI frequency penalty over the output.',
  logit_bias: '{"token_id": bias} added to the logits (-100 bans a token, 100 forces it).',
  seed: 'Makes sampling reproducible for this request.',
  num_beams: 'Beam search when above 1 (deterministic; a stream gets the text in one chunk at the end).',
  length_penalty: 'Beam search: finished beams are ranked by sum(logprobs) / length ** length_penalty.',
  stop: 'Stop strings (up to 32). They may span tokens and are not included in the text.',
  stop_token_ids: 'Token ids that end the generation.',
  ignore_eos: 'Keep generating past the end-of-sequence token.',
  min_tokens: 'Suppress EOS and stop_token_ids until this many tokens were generated.',
  n: 'Independent choices for the same prompt (the prompt is computed once).',
  user: 'Accepted for OpenAI compatibility; not used.',
  stream: 'Stream server-sent events (`data: {chunk}`), ending with `data: [DONE]`.',
  stream_options: '{"include_usage": true} adds a last chunk with the usage and no choices.',
};

const MODEL = 'A model id from GET /v1/models (a LoRA adapter served with --lora-modules is one); default: the first served model. Unknown ids get 404 model_not_found.';
const MAX_TOKENS = 'Most new tokens to generate; default: up to the context length.';

const GENERATE: Record<string, string> = {
  ...SAMPLING,
  model: MODEL,
  prompt: 'A string, or a list of {role, content} messages (rendered with the chat template).',
  session_id:
    'lmdeploy session: -1 (default) is a one-off request; any other id keeps the conversation and its KV cache until sequence_end. ' +
    'The X-Session-Id header may carry it instead.',
  sequence_start: 'Start the session over (default true).',
  sequence_end: 'End the session after this call, freeing its cache (default false).',
  renew_session: 'Start the session over, dropping its history.',
  interactive_mode: 'Accepted for older lmdeploy clients; /generate sessions follow session_id, sequence_start and sequence_end (see /v1/chat/interactive).',
  cancel: "lmdeploy 0.2's cancel: only false; true gets 400 (close the connection to cancel).",
  request_output_len: 'Most new tokens to generate (default: what the context leaves). A full session answers finish_reason "length".',
  max_tokens: 'Same as request_output_len.',
  stop: "Stop strings (up to 32). lmdeploy's boolean `stop` (cancel) gets 400: close the connection to cancel.",
  stream: 'Stream newline-delimited JSON lines {"text", "tokens", "finish_reason"} (application/x-ndjson).',
  stream_options: 'Ignored: the NDJSON lines carry the running token count instead.',
  n: 'Ignored: /generate always answers one choice.',
  ...CONSTRAINT_DOCS,
};

const INTERACTIVE = {
  ...GENERATE,
  session_id: 'lmdeploy session: -1 (default) is a one-off request; any other id continues (or starts) that conversation.',
  interactive_mode: 'true: keep the session for the next call; false (default): end it after this call (an empty prompt with request_output_len 0 just ends it).',
  sequence_start: 'Start the session over (default false: continue it).',
  sequence_end: 'End the session after this call (default: not interactive_mode).',
};

const ENCODE = {
  input: 'A prompt, or a list of prompts.',
  do_preprocess: 'Apply the chat template to each prompt, as one user message (default false).',
  add_bos: "Prepend the tokenizer's BOS when not preprocessing (default true).",
  model: MODEL,
};

export const FIELD_DOCS: Record<'completions' | 'chat' | 'embeddings' | 'generate' | 'interactive' | 'encode', Record<string, string>> = {
  completions: {
    ...SAMPLING,
    model: MODEL,
    prompt: 'A string, a list of strings, token ids, or a list of token-id lists (each prompt gets n choices).',
    max_tokens: MAX_TOKENS,
    echo: 'Prefix each choice with its prompt.',
    suffix: 'Not supported yet: a non-empty suffix gets 400 unsupported_parameter.',
    best_of: 'Generate this many candidates per prompt and return the n with the highest mean token logprob (not with stream).',
    logprobs: 'Return each token\'s logprob and the N most likely alternatives (0-20).',
    ...CONSTRAINT_DOCS,
  },
  chat: {
    ...SAMPLING,
    model: MODEL,
    messages:
      'The conversation, or a plain string (one user message, as lmdeploy\'s APIClient may send). Roles: system, developer (same as system), user, assistant, tool. The text is `content` ' +
      "(a string or text parts) or, as in the Chinese-LLaMA-Alpaca demo, `message`. Rendered with the model's chat template. " +
      'An assistant message may carry `tool_calls` (with `content` null); a tool message answers one with `tool_call_id`.',
    max_tokens: MAX_TOKENS,
    max_completion_tokens: "OpenAI's newer name for max_tokens; wins over it.",
    logprobs: "Return each output token's logprob.",
    top_logprobs: 'With logprobs: true, also the N most likely alternatives of each token (0-20); 0 is accepted without logprobs.',
    stop: "Stop strings (up to 32). lmdeploy's early boolean `stop`: false is no stop, true gets 400 (close the connection to cancel).",
    min_new_tokens: "lmdeploy's name for min_tokens.",
    tools: 'Functions the model may call: `[{"type": "function", "function": {name, description, parameters}}]`. Rendered through the model\'s chat template when it takes tools, else through a default system prompt; calls are parsed from the reply (Hermes `<tool_call>` JSON, Llama 3 JSON, Mistral arrays) and returned as `tool_calls` with finish_reason "tool_calls". With tool_choice "required" or a named function the call is enforced to match the function\'s parameters schema.',
    tool_choice: '"auto" (default with tools), "none", "required", or {"type": "function", "function": {"name": ...}}.',
    parallel_tool_calls: 'Whether one reply may hold several calls (default true).',
    ...CONSTRAINT_DOCS,
  },
  embeddings: {
    model: 'A model id from GET /v1/models; default: the --embedding-model if one is served, else the generation model (its hidden state; a LoRA adapter id pools the adapted model\'s).',
    input: 'A string, a list of strings, token ids, or a list of token-id lists (up to 2048 inputs). Each gets one L2-normalised vector.',
    encoding_format: '"float" (default) or "base64" (little-endian float32 bytes).',
    dimensions: 'Keep the first N dimensions and renormalise (meaningful for Matryoshka-trained models).',
    user: 'Accepted for OpenAI compatibility; not used.',
  },
  generate: GENERATE,
  interactive: INTERACTIVE,
  encode: ENCODE,
};
