/**
 * A Worker's configuration from its environment: `[vars]` in wrangler.toml (or secrets) and the
 * binding that holds the model files. Names follow the CLI flags (MODEL = <model>, INSTANCE_NUM =
 * --instance_num, ...). Bad values fail the start-up with a message naming the variable.
 * @module
 */
import { isDtype } from '../../model/model-config.js';
import { CHAT_TEMPLATES, COMPLETION_TEMPLATES, type ChatTemplate, type CompletionTemplate } from '../../runtime/templates.js';
import { bindingKind, type ModelBinding } from './binding-fetch.js';
import { WEB_DEVICES, type WebDevice } from './devices.js';
import type { WebAppOptions } from './web-app.js';

export interface WorkerEnv {
  /** Model directory name under the binding or MODEL_BASE_URL, or a full URL. Required. */
  MODEL?: string;
  /** Comma-separated names clients may send as `model`. */
  MODEL_NAMES?: string;
  EMBEDDING_MODEL?: string;
  DTYPE?: string;
  DEVICE?: string;
  /** Memory budget for the models, against their estimated cost once loaded (default 128 MiB, the isolate's memory). */
  MAX_MODEL_BYTES?: string;
  /** Where model directories are fetched from when there is no binding. */
  MODEL_BASE_URL?: string;
  /** R2 bucket, KV namespace or service binding holding `<model>/...`. */
  MODELS?: ModelBinding;
  /** Static assets binding (`[assets] binding = "ASSETS"`), used when there is no MODELS. */
  ASSETS?: ModelBinding;
  API_KEYS?: string;
  CORS?: string;
  BASE_PATH?: string;
  INSTANCE_NUM?: string;
  MAX_QUEUE?: string;
  CACHE_MAX_BYTES?: string;
  PREFILL_CHUNK?: string;
  SESSION_LEN?: string;
  MAX_BODY_BYTES?: string;
  CHAT_TEMPLATE?: string;
  PROMPT_TEMPLATE?: string;
}

const list = (value: string | undefined) => value?.split(',').map((s) => s.trim()).filter(Boolean);

function integer(env: WorkerEnv, key: keyof WorkerEnv, min: number): number | undefined {
  const raw = env[key];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${key} must be an integer >= ${min}, not ${JSON.stringify(raw)}.`);
  return value;
}

function oneOf<T extends string>(env: WorkerEnv, key: keyof WorkerEnv, allowed: readonly T[]): T | undefined {
  const raw = env[key];
  if (raw === undefined || raw === '') return undefined;
  if (!allowed.includes(raw as T)) throw new Error(`${key} must be one of ${allowed.join(', ')}, not ${JSON.stringify(raw)}.`);
  return raw as T;
}

export function webAppOptionsFromEnv(env: WorkerEnv): WebAppOptions {
  if (!env.MODEL) throw new Error('MODEL is not set: name the model directory in wrangler.toml [vars] (e.g. MODEL = "karpathy__stories260K").');
  const binding = env.MODELS ?? env.ASSETS;
  if (binding !== undefined && !bindingKind(binding)) throw new Error(`${env.MODELS ? 'MODELS' : 'ASSETS'} is not an R2 bucket, KV namespace, service or assets binding.`);
  if (!binding && !env.MODEL_BASE_URL && !/^https?:/.test(env.MODEL)) {
    throw new Error('No model files: bind them as MODELS (R2, KV or a service), serve them as [assets] (binding ASSETS), or set MODEL_BASE_URL.');
  }
  const dtype = env.DTYPE || undefined;
  if (dtype !== undefined && !isDtype(dtype)) throw new Error(`DTYPE must be one of fp32, fp16, q8, q4, not ${JSON.stringify(dtype)}.`);
  const cors = env.CORS?.trim();
  return {
    model: env.MODEL,
    modelNames: list(env.MODEL_NAMES),
    embeddingModel: env.EMBEDDING_MODEL || undefined,
    dtype,
    device: oneOf<WebDevice>(env, 'DEVICE', WEB_DEVICES),
    maxModelBytes: integer(env, 'MAX_MODEL_BYTES', 1),
    ...(binding ? { binding } : { baseUrl: env.MODEL_BASE_URL }),
    apiKeys: list(env.API_KEYS),
    cors: cors === '*' ? '*' : list(cors),
    basePath: env.BASE_PATH || undefined,
    maxConcurrent: integer(env, 'INSTANCE_NUM', 1),
    maxQueue: integer(env, 'MAX_QUEUE', 0),
    cacheMaxBytes: integer(env, 'CACHE_MAX_BYTES', 0),
    prefillChunk: integer(env, 'PREFILL_CHUNK', 1),
    sessionLength: integer(env, 'SESSION_LEN', 1),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 1),
    chatTemplate: oneOf<ChatTemplate>(env, 'CHAT_TEMPLATE', CHAT_TEMPLATES),
    completionTemplate: oneOf<CompletionTemplate>(env, 'PROMPT_TEMPLATE', COMPLETION_TEMPLATES),
  };
}
