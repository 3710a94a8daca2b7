/**
 * Request examples for the OpenAPI document: the curl bodies of the two documents edgellm replaces,
 * verbatim (the Chinese-LLaMA-Alpaca "API Calls" page and lmdeploy's restful_api.md), so Swagger UI's
 * "Try it out" starts from requests their users already know. A test sends every one to the app.
 * The first example of each endpoint names no model, so it works on whatever model is served.
 * @module
 */

export interface RequestExample {
  summary: string;
  value: Record<string, unknown>;
}

export const REQUEST_EXAMPLES: Record<'completions' | 'chat' | 'embeddings' | 'generate' | 'interactive' | 'encode', Record<string, RequestExample>> = {
  completions: {
    alpaca_capital: {
      summary: 'Chinese-LLaMA-Alpaca: a plain prompt',
      value: { prompt: 'Tell me where the capital of China is' },
    },
    alpaca_beams: {
      summary: 'Chinese-LLaMA-Alpaca: beam search with sampling parameters',
      value: {
        prompt: 'Tell me the strengths and weaknesses of China and the United States respectively',
        max_tokens: 90,
        temperature: 0.7,
        num_beams: 4,
        top_k: 40,
      },
    },
  },
  chat: {
    alpaca_single_turn: {
      summary: "Chinese-LLaMA-Alpaca: one turn, with the demo's `message` key",
      value: { messages: [{ role: 'user', message: 'Tell me some stories about Hangzhou' }], repetition_penalty: 1.0 },
    },
    alpaca_multi_turn: {
      summary: 'Chinese-LLaMA-Alpaca: a multi-turn conversation',
      value: {
        messages: [
          { role: 'user', message: 'Tell me some stories about Hangzhou' },
          { role: 'assistant', message: 'Sure, do you have any specific preferences about Hangzhou?' },
          { role: 'user', message: 'I am quite fond of West Lake, could you tell me about it?' },
        ],
        repetition_penalty: 1.0,
      },
    },
    lmdeploy: {
      summary: 'lmdeploy: OpenAI format (serve with --model-name internlm-chat-7b)',
      value: { model: 'internlm-chat-7b', messages: [{ role: 'user', content: 'Hello! Ho are you?' }] },
    },
  },
  embeddings: {
    alpaca: {
      summary: "Chinese-LLaMA-Alpaca: the LLM's hidden state",
      value: { input: 'The weather is really nice today' },
    },
    lmdeploy: {
      summary: 'lmdeploy (serve with --model-name internlm-chat-7b)',
      value: { model: 'internlm-chat-7b', input: 'Hello world!' },
    },
  },
  generate: {
    lmdeploy_curl: {
      summary: 'lmdeploy: one request in session 1',
      value: { prompt: 'Hello! How are you?', session_id: 1, sequence_start: true, sequence_end: true },
    },
    lmdeploy_stream: {
      summary: "lmdeploy: the Python client's streaming request (newline-delimited JSON)",
      value: {
        prompt: 'Hi, how are you?',
        stream: true,
        session_id: 0,
        request_output_len: 512,
        sequence_start: true,
        sequence_end: true,
        ignore_eos: false,
      },
    },
  },
  interactive: {
    lmdeploy_chat: {
      summary: "lmdeploy 0.2: APIClient.chat(), a turn that keeps the session",
      value: {
        prompt: 'Hi, how are you?',
        session_id: 1,
        interactive_mode: true,
        stream: true,
        stop: null,
        request_output_len: 512,
        top_p: 0.8,
        top_k: 40,
        temperature: 0.8,
        repetition_penalty: 1.0,
        ignore_eos: false,
        skip_special_tokens: true,
      },
    },
    lmdeploy_end_session: {
      summary: 'lmdeploy 0.2: APIClient.end_session(), freeing session 1',
      value: { prompt: '', session_id: 1, interactive_mode: false, request_output_len: 0 },
    },
  },
  encode: {
    lmdeploy_encode: {
      summary: "lmdeploy: APIClient.encode()'s request",
      value: { input: 'Hello! How are you?', do_preprocess: false, add_bos: true },
    },
    batch: { summary: 'Several prompts', value: { input: ['Hello', 'Once upon a time'] } },
  },
};
