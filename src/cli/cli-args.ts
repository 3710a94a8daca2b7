/**
 * Parses `edgellm serve` arguments into runtime and server options. Flags the product cannot
 * honour yet (--tp > 1) fail loudly instead of being ignored.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { CHAT_TEMPLATES, COMPLETION_TEMPLATES, type ChatTemplate, type CompletionTemplate } from '../runtime/templates.js';
import { DEVICES, type Device } from '../adapters/node/devices.js';
import { LOG_FORMATS, type LogFormat } from './logger.js';
import type { Dtype } from '../adapters/node/model-files.js';
import type { NodeRuntimeOptions } from '../adapters/node/runtime.js';

export class UsageError extends Error {}

const DTYPES = ['fp32', 'fp16', 'q8', 'q4'] as const;

export const SERVE_HELP = `Model:
  <model> | --base-model DIR     model directory (transformers.js layout) or Hugging Face Hub id;
                                 or a .gguf file, a folder holding one, or owner/name:Q4_K_M on the Hub
  --tokenizer-path DIR           tokenizer directory (default: the LoRA folder's, else the model's)
  --dtype fp32|fp16|q8|q4        which ONNX file to load (default: the model's preference, else fp32);
                                 for a GGUF: default its own quantization, exact; fp32 dequantizes all
  --gguf-accuracy exact|int8     GGUF 4-bit weights: float32 activations (default) or int8 (faster)
  --load-in-8bit                 same as --dtype q8
  --model-name NAME[,NAME]       names clients send as "model" (default: the directory name)
  --embedding-model DIR          serve /v1/embeddings from this sentence-embedding model
  --prompt-template raw|alpaca   template for /v1/completions prompts (default raw)
  --chat-template NAME           model (default: the model's own), alpaca, chatml, llama-2, raw
  --lora-model DIR|FILE          LoRA adapter merged into a GGUF base (PEFT folder or GGUF LoRA);
                                 its folder's tokenizer is the default when it has one
Device:
  --device auto|cpu|cuda|webgpu  (default auto: CUDA when available, else CPU)
  --only-cpu                     same as --device cpu
  --gpus 0[,1]                   GPU ids; the first is used (one model replica per server for now)
  --threads N                    CPU threads for onnxruntime (default: its choice)
  --exact-quantized              keep weight-only int8 models batch-invariant (slower; see README)
  --tp N                         tensor parallelism: only 1 is supported
Server:
  --host, --server-name HOST     (default 0.0.0.0)
  --port, --server-port PORT     (default 23333)
  --instance-num N               concurrent sequences (default 8)
  --max-queue N                  requests waiting beyond those (default 256); more get 429
  --cache-max-bytes N            KV kept for reuse (prefixes, idle sessions), default 536870912; 0 disables
  --prefill-chunk N              longest prompt piece prefilled per step, so others keep streaming (default 512)
  --session-len N                token budget of a /generate session (default: the model's context)
  --api-keys KEY[,KEY]           require Authorization: Bearer KEY
  --cors ORIGIN[,ORIGIN] | '*'   allowed browser origins (default: no CORS headers)
  --max-body-bytes N             largest request body (default 4194304)
Logs:
  --log-format text|json         one line per request (method, path, status, tokens, ttft, time) (default text)
  --log-health-checks            also log successful GET /health (skipped by default)
Underscores and dashes are interchangeable (--server_port = --server-port).
`;

const OPTIONS = {
  'base-model': { type: 'string' },
  'tokenizer-path': { type: 'string' },
  'lora-model': { type: 'string' },
  dtype: { type: 'string' },
  'gguf-accuracy': { type: 'string' },
  'load-in-8bit': { type: 'boolean' },
  'model-name': { type: 'string', multiple: true },
  'embedding-model': { type: 'string' },
  'prompt-template': { type: 'string' },
  'chat-template': { type: 'string' },
  device: { type: 'string' },
  'only-cpu': { type: 'boolean' },
  gpus: { type: 'string' },
  threads: { type: 'string' },
  'exact-quantized': { type: 'boolean' },
  tp: { type: 'string' },
  host: { type: 'string' },
  'server-name': { type: 'string' },
  port: { type: 'string' },
  'server-port': { type: 'string' },
  'instance-num': { type: 'string' },
  'max-queue': { type: 'string' },
  'cache-max-bytes': { type: 'string' },
  'session-len': { type: 'string' },
  'prefill-chunk': { type: 'string' },
  'api-keys': { type: 'string', multiple: true },
  cors: { type: 'string', multiple: true },
  'allow-origins': { type: 'string', multiple: true },
  'max-body-bytes': { type: 'string' },
  'log-format': { type: 'string' },
  'log-health-checks': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ServeArgs {
  help: boolean;
  host?: string;
  port: number;
  apiKeys?: string[];
  cors?: string[] | '*';
  maxBodyBytes?: number;
  logFormat: LogFormat;
  logHealthChecks: boolean;
  runtime: NodeRuntimeOptions;
  warnings: string[];
}

/** node:util's parseArgs with `_` and `-` interchangeable in flag names; bad flags are UsageErrors. */
export function parseFlags<const O extends ParseArgsOptionsConfig>(argv: string[], options: O) {
  const args = argv.map((a) => (a.startsWith('--') ? a.replace(/^(--[^=]+)/, (flag) => flag.replace(/_/g, '-')) : a));
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function parseServeArgs(argv: string[]): ServeArgs {
  const parsed = parseFlags(argv, OPTIONS);
  const v = parsed.values;
  if (v.help) return { help: true, port: 0, logFormat: 'text', logHealthChecks: false, runtime: { model: '' }, warnings: [] };
  const positionals = parsed.positionals[0] === 'api_server' ? parsed.positionals.slice(1) : parsed.positionals;
  if (positionals.length > 1) throw new UsageError(`expected one model, got: ${positionals.join(' ')}`);
  const model = positionals[0] ?? v['base-model'];
  if (!model) throw new UsageError('no model given: edgellm serve <model directory or Hub id>');
  if (positionals[0] && v['base-model'] && positionals[0] !== v['base-model']) {
    throw new UsageError('give the model either as an argument or with --base-model, not both');
  }
  const tp = int(v.tp, '--tp', 1);
  if (tp !== 1) throw new UsageError(`--tp ${tp}: tensor parallelism is not supported yet; use --tp 1.`);

  const warnings: string[] = [];
  let dtype = oneOf(v.dtype, DTYPES, '--dtype') as Dtype | undefined;
  if (v['load-in-8bit']) {
    if (dtype && dtype !== 'q8') throw new UsageError(`--load-in-8bit conflicts with --dtype ${dtype}`);
    dtype = 'q8';
  }
  let device = oneOf(v.device, DEVICES, '--device') as Device | undefined;
  if (v['only-cpu']) {
    if (device && device !== 'cpu') throw new UsageError(`--only-cpu conflicts with --device ${device}`);
    device = 'cpu';
  }
  const gpus = v.gpus?.split(',').map((id) => int(id.trim(), '--gpus', 0)) ?? [];
  if (gpus.length > 1) warnings.push(`--gpus ${v.gpus}: using GPU ${gpus[0]} only (one model replica per server for now).`);
  if (gpus.length && device === undefined) device = 'cuda';

  const corsList = [...(v.cors ?? []), ...(v['allow-origins'] ?? [])].flatMap(splitList);
  return {
    help: false,
    host: v.host ?? v['server-name'],
    port: int(v.port ?? v['server-port'], '--port', 23333),
    apiKeys: v['api-keys'] ? v['api-keys'].flatMap(splitList) : undefined,
    cors: corsList.includes('*') ? '*' : corsList.length ? corsList : undefined,
    maxBodyBytes: v['max-body-bytes'] === undefined ? undefined : int(v['max-body-bytes'], '--max-body-bytes', 0),
    logFormat: oneOf(v['log-format'], LOG_FORMATS, '--log-format') ?? 'text',
    logHealthChecks: v['log-health-checks'] ?? false,
    warnings,
    runtime: {
      model,
      tokenizerPath: v['tokenizer-path'],
      loraModel: v['lora-model'],
      dtype,
      device,
      deviceId: gpus[0],
      modelNames: v['model-name']?.flatMap(splitList),
      embeddingModel: v['embedding-model'],
      completionTemplate: oneOf(v['prompt-template'], COMPLETION_TEMPLATES, '--prompt-template') as CompletionTemplate | undefined,
      chatTemplate: oneOf(v['chat-template'], CHAT_TEMPLATES, '--chat-template') as ChatTemplate | undefined,
      maxConcurrent: v['instance-num'] === undefined ? undefined : int(v['instance-num'], '--instance-num', 1, 1),
      maxQueue: v['max-queue'] === undefined ? undefined : int(v['max-queue'], '--max-queue', 0),
      cacheMaxBytes: v['cache-max-bytes'] === undefined ? undefined : int(v['cache-max-bytes'], '--cache-max-bytes', 0),
      prefillChunk: v['prefill-chunk'] === undefined ? undefined : int(v['prefill-chunk'], '--prefill-chunk', 1, 1),
      sessionLength: v['session-len'] === undefined ? undefined : int(v['session-len'], '--session-len', 1, 1),
      threads: v.threads === undefined ? undefined : int(v.threads, '--threads', 1, 1),
      exactQuantized: v['exact-quantized'] ?? false,
      ggufAccuracy: oneOf(v['gguf-accuracy'], ['exact', 'int8'] as const, '--gguf-accuracy'),
    },
  };
}

function splitList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function int(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got '${value}'`);
  return n;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}; got '${value}'`);
  return value as T;
}
