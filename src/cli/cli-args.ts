/**
 * Parses `edgellm serve` arguments into runtime and server options. Flags the product cannot
 * honour yet (--tp > 1) fail loudly instead of being ignored.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { parseLoraModules, parseSetting, SETTINGS, SettingError, settingsHelp } from '../app/settings.js';
import type { ChatTemplate, CompletionTemplate } from '../runtime/templates.js';
import type { Device } from '../adapters/node/devices.js';
import type { LogFormat } from './logger.js';
import type { Dtype } from '../adapters/node/model-files.js';
import type { NodeRuntimeOptions } from '../adapters/node/runtime.js';

export class UsageError extends Error {}

/** `edgellm serve --help`, made from the settings table. */
export const SERVE_HELP = settingsHelp();

const CLI_SETTINGS = SETTINGS.filter((s) => s.flag);

/** parseArgs' option table: every flag and alias of the settings table, and --help. */
const OPTIONS: ParseArgsOptionsConfig = Object.fromEntries([
  ...CLI_SETTINGS.flatMap((s) =>
    [s.flag!, ...(s.aliases ?? [])].map((name) => [name, { type: s.kind.type === 'flag' ? 'boolean' : 'string', multiple: s.kind.type === 'list' }] as const),
  ),
  ['help', { type: 'boolean', short: 'h' }],
]);



export interface ServeArgs {
  help: boolean;
  host?: string;
  port: number;
  apiKeys?: string[];
  cors?: string[] | '*';
  maxBodyBytes?: number;
  /** Seconds to receive a request (headers and body); 0 = no limit. */
  requestTimeout: number;
  metricsPublic: boolean;
  /** Seconds between SIGTERM (health says draining) and closing the listener. */
  drainDelaySeconds: number;
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

/** The settings given on the command line, parsed by the settings table, keyed by option name. */
function readSettings(values: Record<string, string | boolean | Array<string | boolean> | undefined>): Record<string, any> {
  const out: Record<string, any> = {};
  for (const s of CLI_SETTINGS) {
    for (const name of [s.flag!, ...(s.aliases ?? [])]) {
      const raw = values[name];
      if (raw === undefined) continue;
      try {
        if (s.kind.type === 'flag') out[s.key] = raw;
        else if (s.kind.type === 'list') out[s.key] = [...(out[s.key] ?? []), ...(raw as string[]).flatMap((v) => parseSetting(s, v, `--${name}`) as string[])];
        else out[s.key] ??= parseSetting(s, raw as string, `--${name}`);
      } catch (error) {
        throw error instanceof SettingError ? new UsageError(error.message) : error;
      }
    }
  }
  return out;
}

/**
 * vLLM's `--lora-modules a=PATH b=PATH`: the values after the flag, up to the next flag, are one
 * occurrence each (parseArgs takes one value per flag). A word without `=` (the model) ends them.
 */
function spreadLoraModules(argv: string[]): string[] {
  const out: string[] = [];
  let taken = -1; // values taken since the flag; -1 outside it
  for (const arg of argv) {
    if (/^--lora[-_]modules$/.test(arg)) {
      if (taken === 0) out.push('--lora-modules'); // the previous one had no value: parseArgs says so
      taken = 0;
      continue;
    }
    if (taken >= 0 && !arg.startsWith('-') && (taken === 0 || arg.includes('='))) {
      out.push('--lora-modules', arg);
      taken++;
      continue;
    }
    if (taken === 0) out.push('--lora-modules');
    taken = -1;
    out.push(arg);
  }
  if (taken === 0) out.push('--lora-modules');
  return out;
}

export function parseServeArgs(argv: string[]): ServeArgs {
  const parsed = parseFlags(spreadLoraModules(argv), OPTIONS);
  if (parsed.values.help) {
    return { help: true, port: 0, requestTimeout: 60, metricsPublic: false, drainDelaySeconds: 0, logFormat: 'text', logHealthChecks: false, runtime: { model: '' }, warnings: [] };
  }
  const v = readSettings(parsed.values);
  const positionals = parsed.positionals[0] === 'api_server' ? parsed.positionals.slice(1) : parsed.positionals;
  if (positionals.length > 1) throw new UsageError(`expected one model, got: ${positionals.join(' ')}`);
  const model = positionals[0] ?? v.model;
  if (!model) throw new UsageError('no model given: edgellm serve <model directory or Hub id>');
  if (positionals[0] && v.model && positionals[0] !== v.model) {
    throw new UsageError('give the model either as an argument or with --base-model, not both');
  }
  if (v.tp !== undefined && v.tp !== 1) throw new UsageError(`--tp ${v.tp}: tensor parallelism is not supported yet; use --tp 1.`);

  const warnings: string[] = [];
  let dtype = v.dtype as Dtype | undefined;
  if (v.loadIn8bit) {
    if (dtype && dtype !== 'q8') throw new UsageError(`--load-in-8bit conflicts with --dtype ${dtype}`);
    dtype = 'q8';
  }
  let device = v.device as Device | undefined;
  if (v.onlyCpu) {
    if (device && device !== 'cpu') throw new UsageError(`--only-cpu conflicts with --device ${device}`);
    device = 'cpu';
  }
  const gpus = (v.gpus as string | undefined)?.split(',').map((id) => int(id.trim(), '--gpus', 0)) ?? [];
  if (gpus.length > 1) warnings.push(`--gpus ${v.gpus}: using GPU ${gpus[0]} only (one model replica per server for now).`);
  if (gpus.length && device === undefined) device = 'cuda';

  // `--api-keys "$KEYS"` with KEYS unset must not start a server open to everyone.
  if (v.apiKeys !== undefined && v.apiKeys.length === 0) {
    throw new UsageError('--api-keys is empty (an unset variable?): give at least one key, or leave the flag out to serve without keys.');
  }
  const cors = v.cors as string[] | undefined;
  return {
    help: false,
    host: v.host,
    port: v.port ?? 23333,
    apiKeys: v.apiKeys,
    cors: cors?.includes('*') ? '*' : cors?.length ? cors : undefined,
    maxBodyBytes: v.maxBodyBytes,
    requestTimeout: v.requestTimeout ?? 60,
    metricsPublic: v.metricsPublic ?? false,
    drainDelaySeconds: v.drainDelaySeconds ?? 0,
    logFormat: (v.logFormat as LogFormat | undefined) ?? 'text',
    logHealthChecks: v.logHealthChecks ?? false,
    warnings,
    runtime: {
      model,
      advice: {
        unknownModel: '(Use --model-name to serve a model under another name.)',
        noChatTemplate: 'Start the server with --chat-template NAME.',
        noEmbeddingModel: 'Start the server with --embedding-model.',
      },
      tokenizerPath: v.tokenizerPath,
      loraModel: v.loraModel,
      loraModules: v.loraModules ? loraModules(v.loraModules) : undefined,
      dtype,
      device,
      deviceId: gpus[0],
      modelNames: v.modelNames,
      embeddingModel: v.embeddingModel,
      completionTemplate: v.completionTemplate as CompletionTemplate | undefined,
      chatTemplate: v.chatTemplate as ChatTemplate | undefined,
      maxConcurrent: v.maxConcurrent,
      maxQueue: v.maxQueue,
      cacheMaxBytes: v.cacheMaxBytes,
      prefillChunk: v.prefillChunk,
      promptLookup: v.promptLookup,
      sessionLength: v.sessionLength,
      threads: v.threads,
      threadSleep: v.threadSleep ?? false,
      exactQuantized: v.exactQuantized ?? false,
      ggufAccuracy: v.ggufAccuracy,
    },
  };
}

function loraModules(entries: string[]): { name: string; path: string }[] {
  try {
    return parseLoraModules(entries);
  } catch (error) {
    throw error instanceof SettingError ? new UsageError(error.message) : error;
  }
}

function int(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got '${value}'`);
  return n;
}
