/**
 * The OpenAPI 3.1 document of every API route. Request bodies are generated from the zod schemas the
 * handlers validate with, and responses from `response-schemas.ts`, which the tests check against
 * real responses; the examples are the seed documents' requests. Only the operation list, error
 * statuses and prose are written here, and a test matches the operation list to the app's route table.
 * @module
 */
import type { z } from 'zod';
import { chatRequestSchema } from '../chat-completions/schema.js';
import { completionRequestSchema } from '../completions/schema.js';
import { embeddingRequestSchema } from '../embeddings/schema.js';
import { generateRequestSchema } from '../generate/schema.js';
import { REQUEST_EXAMPLES, type RequestExample } from './examples.js';
import { FIELD_DOCS } from './field-docs.js';
import { toJsonSchema, type JsonSchema } from './json-schema.js';
import * as responses from './response-schemas.js';

/**
 * The package version (a test keeps them equal). Importing package.json instead would inline all of
 * it into every bundle, the browser and Worker ones included.
 */
export const EDGELLM_VERSION = '0.1.0';

export interface OpenApiOptions {
  /** Where the app is mounted ('' or e.g. '/llm'): the document's server URL, relative to its host. */
  basePath?: string;
  /** Whether the server requires a bearer key (`--api-keys`). */
  authRequired?: boolean;
}

/** The request schema of each POST route, with its component name, field docs and examples. */
export const REQUEST_BODIES = {
  '/v1/completions': { name: 'CompletionRequest', schema: completionRequestSchema, docs: FIELD_DOCS.completions, examples: REQUEST_EXAMPLES.completions },
  '/v1/chat/completions': { name: 'ChatCompletionRequest', schema: chatRequestSchema, docs: FIELD_DOCS.chat, examples: REQUEST_EXAMPLES.chat },
  '/v1/embeddings': { name: 'EmbeddingRequest', schema: embeddingRequestSchema, docs: FIELD_DOCS.embeddings, examples: REQUEST_EXAMPLES.embeddings },
  '/generate': { name: 'GenerateRequest', schema: generateRequestSchema, docs: FIELD_DOCS.generate, examples: REQUEST_EXAMPLES.generate },
} satisfies Record<string, { name: string; schema: z.ZodObject; docs: Record<string, string>; examples: Record<string, RequestExample> }>;

export const RESPONSE_SCHEMAS = {
  ServerInfo: responses.rootSchema,
  Health: responses.healthSchema,
  Model: responses.modelSchema,
  ModelList: responses.modelListSchema,
  Completion: responses.completionSchema,
  CompletionChunk: responses.completionChunkSchema,
  ChatCompletion: responses.chatCompletionSchema,
  ChatCompletionChunk: responses.chatCompletionChunkSchema,
  EmbeddingList: responses.embeddingListSchema,
  GenerateResponse: responses.generateResponseSchema,
  GenerateChunk: responses.generateChunkSchema,
  Error: responses.errorSchema,
} satisfies Record<string, z.ZodType>;

/** Every error status the API answers, described once and referenced by the operations. */
const ERRORS: Record<number, { name: string; description: string; headers?: JsonSchema }> = {
  400: { name: 'BadRequest', description: 'Invalid JSON, a wrong type or out-of-range value (`param` names the field), a prompt longer than the context, or an unsupported parameter' },
  401: { name: 'Unauthorized', description: 'Missing or wrong API key (the server runs with --api-keys)' },
  404: { name: 'NotFound', description: 'Unknown model (`model_not_found`)' },
  408: { name: 'RequestTimeout', description: 'The body did not arrive within --request-timeout' },
  409: { name: 'Conflict', description: 'The /generate session is still generating' },
  413: { name: 'PayloadTooLarge', description: 'The body is larger than --max-body-bytes' },
  429: {
    name: 'TooManyRequests',
    description: 'The queue is full (--instance_num sequences running, --max-queue waiting)',
    headers: { 'Retry-After': { description: "Seconds to wait: the queue's expected wait", schema: { type: 'integer' } } },
  },
  503: { name: 'ServiceUnavailable', description: 'The model is still loading, the server is stopping, or its inference thread died' },
};

const GENERATION_ERRORS = [400, 401, 404, 408, 413, 429, 503];
const NO_AUTH: never[] = [];
const ref = (kind: 'schemas' | 'responses', name: string) => ({ $ref: `#/components/${kind}/${name}` });
const json = (schema: string, extra: JsonSchema = {}) => ({ 'application/json': { schema: ref('schemas', schema), ...extra } });

function errorResponses(statuses: number[]) {
  return Object.fromEntries(statuses.map((status) => [String(status), ref('responses', ERRORS[status].name)]));
}

function stream(mediaType: string, chunk: string, framing: string) {
  return {
    [mediaType]: {
      schema: { type: 'string', description: `With "stream": true. ${framing} Each line's JSON is a ${chunk} (see Schemas).` },
    },
  };
}

function requestBody(path: keyof typeof REQUEST_BODIES) {
  const { name, examples } = REQUEST_BODIES[path];
  return { required: true, content: json(name, { examples }) };
}

/** A request schema as JSON Schema, each field carrying its line from field-docs.ts. */
export function requestJsonSchema(schema: z.ZodObject, docs: Record<string, string>): JsonSchema {
  const out = toJsonSchema(schema);
  const properties = out.properties as Record<string, JsonSchema>;
  for (const [field, property] of Object.entries(properties)) {
    if (docs[field] && property.description === undefined) properties[field] = { description: docs[field], ...property };
  }
  return out;
}

export function buildOpenApiDocument(options: OpenApiOptions = {}) {
  const base = (options.basePath ?? '').replace(/\/+$/, '');
  // Keys optional ({}) unless the server requires one: Swagger UI then still offers "Authorize".
  const keyed = options.authRequired ? [{ bearerAuth: [] }] : [{}, { bearerAuth: [] }];
  const post = (path: keyof typeof REQUEST_BODIES, operation: JsonSchema, statuses = GENERATION_ERRORS) => ({
    post: { ...operation, security: keyed, requestBody: requestBody(path), responses: { ...(operation.responses as object), ...errorResponses(statuses) } },
  });

  return {
    openapi: '3.1.0',
    info: {
      title: 'edgellm',
      version: EDGELLM_VERSION,
      summary: 'OpenAI- and lmdeploy-compatible LLM server',
      description:
        'The OpenAI REST API (`/v1/...`) and lmdeploy\'s `/generate`, answering the requests of the Chinese-LLaMA-Alpaca ' +
        'OpenAI-style server and of `lmdeploy serve api_server` unchanged. Errors are OpenAI\'s `{"error": {...}}` object.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: base || '/', description: 'This server' }],
    tags: [
      { name: 'OpenAI', description: 'OpenAI-compatible endpoints' },
      { name: 'lmdeploy', description: "lmdeploy's native API, with stateful sessions" },
      { name: 'server', description: 'Health, description and this document' },
    ],
    paths: {
      '/': {
        get: {
          tags: ['server'],
          operationId: 'describeServer',
          summary: 'What this server is and serves',
          description: 'Browsers (Accept: text/html) are redirected to the Swagger UI at /docs, as lmdeploy serves it at its root.',
          security: NO_AUTH,
          responses: {
            200: { description: 'The server, its models and its endpoints', content: json('ServerInfo') },
            302: { description: 'To /docs, for a browser', headers: { Location: { schema: { type: 'string' } } } },
          },
        },
      },
      '/health': {
        get: {
          tags: ['server'],
          operationId: 'health',
          summary: 'Readiness',
          security: NO_AUTH,
          responses: {
            200: { description: 'Ready: `{"status": "ok"}`', content: json('Health') },
            503: { description: 'Loading or stopping: `{"status": "loading"}` or `"closed"`', content: json('Health') },
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['server'],
          operationId: 'openapi',
          summary: 'This OpenAPI 3.1 document',
          security: NO_AUTH,
          responses: { 200: { description: 'The document', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      '/v1/models': {
        get: {
          tags: ['OpenAI'],
          operationId: 'listModels',
          summary: 'List the served models (the embedding model too)',
          security: keyed,
          responses: { 200: { description: 'The models', content: json('ModelList') }, ...errorResponses([401]) },
        },
      },
      '/v1/models/{id}': {
        get: {
          tags: ['OpenAI'],
          operationId: 'retrieveModel',
          summary: 'One served model',
          security: keyed,
          parameters: [{ name: 'id', in: 'path', required: true, description: 'A model id from GET /v1/models', schema: { type: 'string' } }],
          responses: { 200: { description: 'The model', content: json('Model') }, ...errorResponses([401, 404]) },
        },
      },
      '/v1/completions': post('/v1/completions', {
        tags: ['OpenAI'],
        operationId: 'createCompletion',
        summary: 'Complete a prompt',
        description: 'With `--prompt-template alpaca` the prompt is wrapped in the Alpaca instruction template, as the Chinese-LLaMA-Alpaca server did.',
        responses: {
          200: {
            description: 'The completion, or a stream of chunks',
            content: { ...json('Completion'), ...stream('text/event-stream', 'CompletionChunk', 'Server-sent events `data: {...}`, ending with `data: [DONE]`.') },
          },
        },
      }),
      '/v1/chat/completions': post('/v1/chat/completions', {
        tags: ['OpenAI'],
        operationId: 'createChatCompletion',
        summary: 'Answer a conversation',
        responses: {
          200: {
            description: 'One assistant message per choice, or a stream of chunks',
            content: {
              ...json('ChatCompletion'),
              ...stream('text/event-stream', 'ChatCompletionChunk', 'Server-sent events `data: {...}`, ending with `data: [DONE]`.'),
            },
          },
        },
      }),
      '/v1/embeddings': post(
        '/v1/embeddings',
        {
          tags: ['OpenAI'],
          operationId: 'createEmbedding',
          summary: 'Embed text',
          description: "From `--embedding-model` when one is served, else the LLM's mean-pooled final hidden state (length = hidden size).",
          responses: { 200: { description: 'One vector per input', content: json('EmbeddingList') } },
        },
        [400, 401, 404, 413, 503],
      ),
      '/generate': post(
        '/generate',
        {
          tags: ['lmdeploy'],
          operationId: 'generate',
          summary: 'Generate, optionally in a stateful session',
          description:
            'lmdeploy\'s native API. A session (`session_id` >= 0) keeps its history and KV cache between calls until ' +
            '`sequence_end`, so each turn computes only its new tokens; a full session answers `finish_reason: "length"`.',
          responses: {
            200: {
              description: 'The text, or a stream of lines',
              content: { ...json('GenerateResponse'), ...stream('application/x-ndjson', 'GenerateChunk', 'Newline-delimited JSON, one object per line.') },
            },
          },
        },
        [...GENERATION_ERRORS, 409].sort((a, b) => a - b),
      ),
    },
    components: {
      schemas: {
        ...Object.fromEntries(Object.values(REQUEST_BODIES).map((b) => [b.name, requestJsonSchema(b.schema, b.docs)])),
        ...Object.fromEntries(Object.entries(RESPONSE_SCHEMAS).map(([name, schema]) => [name, toJsonSchema(schema)])),
      },
      responses: Object.fromEntries(
        Object.values(ERRORS).map(({ name, description, headers }) => [name, { description, ...(headers ? { headers } : {}), content: json('Error') }]),
      ),
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: `One of the server's --api-keys. ${options.authRequired ? 'This server requires one.' : 'This server requires none.'}`,
        },
      },
    },
  };
}
