/**
 * Every setting of a served model, once: its `edgellm serve` flag (and the seed servers' spellings),
 * its Worker variable, how its value is read, and its one-line description. The CLI parser, the
 * Worker's variable parser, `edgellm serve --help` and the README's two tables are all made from
 * this table (a test checks the README).
 * @module
 */
import { DTYPES } from '../model/model-config.js';
import { CHAT_TEMPLATES, COMPLETION_TEMPLATES } from '../runtime/templates.js';

export type SettingKind =
  | { type: 'int'; min: number }
  | { type: 'enum'; values: readonly string[] }
  /** comma-separated; a repeated flag adds to the list */
  | { type: 'list' }
  | { type: 'string' }
  /** a number of seconds, fractions allowed */
  | { type: 'seconds' }
  /** a CLI switch without a value */
  | { type: 'flag' };

export interface Setting {
  /** The option it sets (NodeRuntimeOptions, WebAppOptions or the CLI's own). */
  key: string;
  /** `edgellm serve --<flag>` (dashes; underscores are accepted too). Absent: Worker only. */
  flag?: string;
  /** Other spellings of the flag (lmdeploy's, Chinese-LLaMA-Alpaca's). */
  aliases?: string[];
  /** The Worker variable (`[vars]` in wrangler.toml). Absent: CLI only. */
  env?: string;
  kind: SettingKind;
  /** What the value is, in `--help` (`N`, `DIR`); defaults from the kind. */
  arg?: string;
  group: 'Model' | 'Device' | 'Server' | 'Logs';
  /** One line for `--help`. */
  help: string;
  /** The README's description (markdown) when it says more than `help`. */
  doc?: string;
  /** The README's description of the Worker variable, when it differs from the flag's. */
  envDoc?: string;
}

const int = (min: number): SettingKind => ({ type: 'int', min });
const oneOf = (values: readonly string[]): SettingKind => ({ type: 'enum', values });
const list: SettingKind = { type: 'list' };
const string: SettingKind = { type: 'string' };
const flag: SettingKind = { type: 'flag' };
const seconds: SettingKind = { type: 'seconds' };

export const CLI_DEVICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
export const WORKER_DEVICES = ['auto', 'webgpu', 'wasm'] as const;
export const LOG_FORMATS = ['text', 'json'] as const;

export const SETTINGS: readonly Setting[] = [
  {
    key: 'model', flag: 'base-model', env: 'MODEL', kind: string, arg: 'DIR', group: 'Model',
    help: 'model directory (transformers.js layout) or Hub id, or a .gguf file, a folder holding one, or owner/name:Q4_K_M; or give it as the argument',
    doc: 'model directory or Hub id, or a GGUF: a `.gguf` file, a folder holding one, or `owner/name:Q4_K_M` on the Hub (or give it as the argument: `edgellm serve <model>`)',
    envDoc: 'model directory name under the model files (or a full URL); required',
  },
  { key: 'tokenizerPath', flag: 'tokenizer-path', kind: string, arg: 'DIR', group: 'Model', help: "tokenizer directory (default: the LoRA adapter's folder when it has one, else the model's)" },
  {
    key: 'dtype', flag: 'dtype', env: 'DTYPE', kind: oneOf(DTYPES), group: 'Model',
    help: "which ONNX file to load (default: the model's preference, else the first of fp32, q8, q4, fp16); for a GGUF: default its own quantization, fp32 dequantizes all",
    doc:
      "ONNX file: `model.onnx`, `model_fp16.onnx`, `model_quantized.onnx`, `model_q4.onnx` (default: the model's " +
      '`transformers.js_config.dtype`, else the first present of fp32, q8, q4, fp16)',
  },
  {
    key: 'ggufAccuracy', flag: 'gguf-accuracy', kind: oneOf(['exact', 'int8']), group: 'Model',
    help: "a GGUF's 4-bit weights with float32 activations (exact, default) or int8 activations (faster, llama.cpp-like)",
    doc: "a GGUF's 4-bit weights with float32 activations (`exact`, default) or int8 activations (`int8`: faster, as llama.cpp computes)",
  },
  { key: 'loadIn8bit', flag: 'load-in-8bit', kind: flag, group: 'Model', help: 'same as --dtype q8' },
  {
    key: 'modelNames', flag: 'model-name', env: 'MODEL_NAMES', kind: list, arg: 'NAME[,NAME]', group: 'Model',
    help: 'names clients send as "model" (default: the directory name)',
    doc: 'the names clients send as `model` (default: the directory name, or the Hub id). Unknown names get 404.',
  },
  {
    key: 'embeddingModel', flag: 'embedding-model', env: 'EMBEDDING_MODEL', kind: string, arg: 'DIR', group: 'Model',
    help: 'serve /v1/embeddings from this sentence-embedding model (mean pooling, normalised)',
    doc: 'serve `/v1/embeddings` from this sentence-embedding model (mean pooling, normalised)',
  },
  {
    key: 'completionTemplate', flag: 'prompt-template', env: 'PROMPT_TEMPLATE', kind: oneOf(COMPLETION_TEMPLATES), group: 'Model',
    help: 'template for /v1/completions prompts (default raw)',
    doc: 'template for `/v1/completions` prompts (default `raw`)',
  },
  {
    key: 'chatTemplate', flag: 'chat-template', env: 'CHAT_TEMPLATE', kind: oneOf(CHAT_TEMPLATES), group: 'Model',
    help: "chat template (default model: the model's own Jinja chat_template)",
    doc: "chat template (default `model`: the model's own Jinja `chat_template`)",
  },
  {
    key: 'loraModel', flag: 'lora-model', kind: string, arg: 'DIR|FILE', group: 'Model',
    help: "LoRA adapter merged exactly (fp32) into a GGUF base at load: a PEFT folder or a GGUF LoRA; its folder's tokenizer is the default when it has one",
    doc: "LoRA adapter merged exactly (fp32) into a GGUF base at load: a PEFT folder (`adapter_config.json` + `adapter_model.safetensors`) or a llama.cpp GGUF LoRA; `--tokenizer_path` defaults to its folder when that holds a tokenizer (see [LoRA adapters](#lora-adapters))",
  },
  {
    key: 'loraModules', flag: 'lora-modules', env: 'LORA_MODULES', kind: list, arg: 'NAME=PATH ...', group: 'Model',
    help: "LoRA adapters served at run time beside a GGUF base, each as model id NAME (vLLM's syntax; PEFT folders or GGUF LoRAs)",
    doc:
      "LoRA adapters served at run time beside a GGUF base, each as its own model id (vLLM's syntax: " +
      '`--lora-modules sql=./sql-lora poem=./poem.gguf`; PEFT folders or llama.cpp GGUF LoRAs). One base graph holds every ' +
      'adapter; requests choose by `model`, and one batch can mix them (see [LoRA adapters](#lora-adapters))',
    envDoc: 'LoRA adapters served at run time beside a `.gguf` MODEL: `name=path, name=path` (PEFT folders or `.gguf` LoRAs, read like the model files)',
  },
  {
    key: 'device', flag: 'device', kind: oneOf(CLI_DEVICES), group: 'Device',
    help: 'default auto: CUDA when its provider is installed, else the CPU (said in the log)',
  },
  {
    key: 'device', env: 'DEVICE', kind: oneOf(WORKER_DEVICES), group: 'Device',
    help: 'default auto: WebGPU when there is an adapter (never in workerd), else wasm',
    doc: '`auto` (default: WebGPU when there is an adapter, never in workerd, else wasm), `webgpu`, `wasm`',
  },
  { key: 'onlyCpu', flag: 'only-cpu', kind: flag, group: 'Device', help: 'same as --device cpu' },
  {
    key: 'gpus', flag: 'gpus', kind: string, arg: 'ID[,ID]', group: 'Device',
    help: 'GPU id; with several ids the first is used (one model replica per server for now, said in the log)',
  },
  { key: 'threads', flag: 'threads', kind: int(1), group: 'Device', help: "onnxruntime CPU threads (default: onnxruntime's choice)" },
  {
    key: 'threadSleep', flag: 'thread-sleep', kind: flag, group: 'Device',
    help: "onnxruntime's idle CPU threads sleep between ops instead of spinning: about 2x faster when other processes take cores, 10-20% slower on idle ones",
    doc: "onnxruntime's idle CPU threads sleep between ops instead of spinning (onnxruntime's default): about 2x faster when other processes take cores (a shared machine, a busy host), 10-20% slower on cores nothing else uses (see [Tune it](#tune-it))",
  },
  {
    key: 'exactQuantized', flag: 'exact-quantized', kind: flag, group: 'Device',
    help: 'keep int8 models batch-invariant (slower: one sequence per call for graphs that quantize activations)',
    doc: 'keep int8 models batch-invariant (slower: one sequence per call for graphs that quantize activations; see [Tune it](#tune-it))',
  },
  { key: 'tp', flag: 'tp', kind: int(1), group: 'Device', help: 'tensor parallelism: only 1 is supported (anything else fails at start)' },
  { key: 'host', flag: 'host', aliases: ['server-name'], kind: string, arg: 'HOST', group: 'Server', help: 'address to listen on (default 0.0.0.0)' },
  { key: 'port', flag: 'port', aliases: ['server-port'], kind: int(0), arg: 'PORT', group: 'Server', help: 'port to listen on (default 23333; 0 picks a free one)' },
  { key: 'maxConcurrent', flag: 'instance-num', env: 'INSTANCE_NUM', kind: int(1), group: 'Server', help: 'concurrent sequences (default 8)' },
  {
    key: 'maxQueue', flag: 'max-queue', env: 'MAX_QUEUE', kind: int(0), group: 'Server',
    help: 'requests waiting beyond those (default 256); more get 429 with Retry-After',
    doc: 'requests waiting beyond those (default 256); more get 429 with `Retry-After`',
  },
  {
    key: 'cacheMaxBytes', flag: 'cache-max-bytes', env: 'CACHE_MAX_BYTES', kind: int(0), group: 'Server',
    help: 'KV cache kept for reuse: finished prefixes and idle /generate sessions (default 512 MiB; 0 disables)',
    doc:
      'KV cache kept for reuse: finished requests\' prefixes and idle `/generate` sessions (default 512 MiB, least ' +
      'recently used evicted first; 0 disables)',
  },
  {
    key: 'prefillChunk', flag: 'prefill-chunk', env: 'PREFILL_CHUNK', kind: int(1), group: 'Server',
    help: 'longest prompt piece prefilled in one step, so others keep streaming (default 512)',
  },
  {
    key: 'promptLookup', flag: 'prompt-lookup', env: 'PROMPT_LOOKUP', kind: int(0), group: 'Server',
    help: 'greedy requests running alone verify up to N draft tokens per step, copied from where their last tokens occurred earlier in the prompt or reply (default 4; 0: off)',
    doc:
      'prompt-lookup speculative decoding: a greedy request running alone verifies up to N draft tokens per step, copied from where ' +
      'its last tokens occurred earlier in its prompt or reply; same tokens, fewer steps when the text repeats itself (default 4; 0: off; ' +
      'see [Tune it](#tune-it))',
    envDoc:
      'prompt-lookup speculative decoding, as `--prompt-lookup`: up to N draft tokens per step for a greedy request running alone ' +
      '(default 0 in a Worker: not measured on WebGPU)',
  },
  {
    key: 'sessionLength', flag: 'session-len', env: 'SESSION_LEN', kind: int(1), group: 'Server',
    help: "token budget of a /generate session (lmdeploy's flag; default: the model's context)",
    doc: "token budget of a `/generate` session (lmdeploy's flag; default: the model's context)",
  },
  {
    key: 'apiKeys', flag: 'api-keys', env: 'API_KEYS', kind: list, arg: 'KEY[,KEY]', group: 'Server',
    help: 'require Authorization: Bearer <key>; /, /health, /openapi.json, /docs and /ui stay public',
    doc: 'require `Authorization: Bearer <key>` (constant-time compare); `/`, `/health`, `/openapi.json`, `/docs` and `/ui` stay public',
    envDoc: 'comma-separated keys (use `wrangler secret put API_KEYS`); `/`, `/health`, the docs and `/ui` stay public',
  },
  {
    key: 'cors', flag: 'cors', aliases: ['allow-origins'], env: 'CORS', kind: list, arg: "ORIGIN[,ORIGIN]|'*'", group: 'Server',
    help: 'allowed browser origins, or * for any (default: no CORS headers)',
    doc: "allowed browser origins, or `'*'` for any (default: no CORS headers)",
  },
  {
    key: 'maxBodyBytes', flag: 'max-body-bytes', env: 'MAX_BODY_BYTES', kind: int(1), group: 'Server',
    help: 'largest request body (default 256 bytes per token of context, at least 1 MiB; 413 beyond)',
  },
  {
    key: 'requestTimeout', flag: 'request-timeout', kind: seconds, arg: 'SECONDS', group: 'Server',
    help: "seconds to receive a request's headers and body (default 60; 408 after; 0 = none)",
    doc: "seconds to receive a request's headers and body (default 60; 408 after; 0 = none); a response, however long it streams, is not limited",
  },
  {
    key: 'metricsPublic', flag: 'metrics-public', kind: flag, group: 'Server',
    help: 'serve GET /metrics without a key even with --api-keys',
    doc: 'serve `GET /metrics` without a key even with `--api-keys` (for a scraper inside your network)',
  },
  {
    key: 'drainDelaySeconds', flag: 'drain-delay', kind: seconds, arg: 'SECONDS', group: 'Server',
    help: 'on SIGTERM, keep listening this long with /health answering 503 "draining" before closing (default 0)',
    doc:
      'on SIGTERM, keep listening this long with `/health` answering 503 `{"status":"draining"}` (requests are still served), so a ' +
      'balancer stops sending before the listener closes (default 0)',
  },
  { key: 'basePath', env: 'BASE_PATH', kind: string, group: 'Server', help: 'mount point, e.g. /llm serves /llm/v1/models', doc: 'mount point: `/llm` serves `/llm/v1/models`' },
  {
    key: 'maxModelBytes', env: 'MAX_MODEL_BYTES', kind: int(1), group: 'Model',
    help: "memory budget for the models, against their estimated cost once loaded (onnxruntime-web's wasm growth per file byte, plus the JS copies); default 134217728 (128 MiB, a Worker isolate's memory)",
  },
  {
    key: 'shards', env: 'SHARDS', kind: int(1), group: 'Server',
    help: 'Durable Objects serving this model: a session stays on one (by X-Session-Id or session_id), other requests spread by a hash (default 1)',
    doc: 'Durable Objects serving this model: a session stays on one (by `X-Session-Id` or `session_id`), other requests spread by a hash (default 1)',
  },
  {
    key: 'modelBaseUrl', env: 'MODEL_BASE_URL', kind: string, group: 'Model',
    help: 'fetch model directories from <url>/<MODEL>/... when no binding holds them',
    doc: 'fetch model directories from `<url>/<MODEL>/...` when no binding holds them',
  },
  {
    key: 'logFormat', flag: 'log-format', kind: oneOf(LOG_FORMATS), group: 'Logs',
    help: 'one line per request (method, path, status, tokens, ttft, time); json for log collectors (default text)',
    doc: 'one log line per request: method, path, status, tokens in and out, time to first token, total time (default `text`; `json` writes every log line as one JSON object)',
  },
  {
    key: 'logHealthChecks', flag: 'log-health-checks', kind: flag, group: 'Logs',
    help: 'also log GET /health probes, 200 and 503 while loading (skipped by default: load balancers poll it)',
    doc: 'also log `GET /health` probes, 200 and 503 while loading (skipped by default: load balancers poll it; never logged as errors)',
  },
];

/** A value that does not fit its setting; the message names the flag or variable. */
export class SettingError extends Error {}

/** Reads one raw value; `name` is how the user spelled the setting (`--port`, `INSTANCE_NUM`). */
export function parseSetting(setting: Setting, raw: string, name: string): number | string | string[] {
  const { kind } = setting;
  switch (kind.type) {
    case 'int': {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isInteger(value) || value < kind.min) throw new SettingError(`${name} must be an integer >= ${kind.min}, not ${JSON.stringify(raw)}.`);
      return value;
    }
    case 'seconds': {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value) || value < 0) throw new SettingError(`${name} must be a number of seconds >= 0, not ${JSON.stringify(raw)}.`);
      return value;
    }
    case 'enum':
      if (!kind.values.includes(raw)) throw new SettingError(`${name} must be one of ${kind.values.join(', ')}, not ${JSON.stringify(raw)}.`);
      return raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    default:
      return raw;
  }
}

/**
 * `name=PATH` entries of --lora-modules / LORA_MODULES (vLLM's syntax): each NAME is a model id, PATH
 * a PEFT adapter folder or a GGUF LoRA. A bad entry or a repeated name is a SettingError naming `setting`.
 */
export function parseLoraModules(entries: string[], setting = '--lora-modules'): { name: string; path: string }[] {
  const modules = entries.map((entry) => {
    const eq = entry.indexOf('=');
    const name = eq > 0 ? entry.slice(0, eq).trim() : '';
    const path = eq > 0 ? entry.slice(eq + 1).trim() : '';
    if (!name || !path) {
      throw new SettingError(`${setting} ${entry}: expected NAME=PATH (the model id clients send, then a PEFT adapter folder or a GGUF LoRA file), e.g. ${setting} sql=./sql-lora`);
    }
    if (!/^[\w.:/@+-]+$/.test(name)) throw new SettingError(`${setting} ${entry}: the name "${name}" may only hold letters, digits and _ . : / @ + -.`);
    return { name, path };
  });
  const names = modules.map((m) => m.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new SettingError(`${setting}: the name "${twice}" is given twice.`);
  return modules;
}

/** Every setting a Worker reads from its variables, parsed, keyed by option name; unset and empty ones are left out. */
export function settingsFromEnv(env: Record<string, unknown>): Record<string, number | string | string[]> {
  const out: Record<string, number | string | string[]> = {};
  for (const setting of SETTINGS) {
    if (!setting.env) continue;
    const raw = env[setting.env];
    if (raw === undefined || raw === '') continue;
    if (typeof raw !== 'string') throw new SettingError(`${setting.env} must be a string variable ([vars] or a secret), not a binding.`);
    out[setting.key] = parseSetting(setting, raw, setting.env);
  }
  return out;
}

const metavar = (s: Setting) => s.arg ?? (s.kind.type === 'int' ? 'N' : s.kind.type === 'enum' ? s.kind.values.join('|') : s.kind.type === 'flag' ? '' : 'VALUE');
const cliSettings = () => SETTINGS.filter((s) => s.flag);

/** `edgellm serve --help`: the flags by group. */
export function settingsHelp(): string {
  const lines: string[] = [];
  for (const group of ['Model', 'Device', 'Server', 'Logs'] as const) {
    lines.push(`${group}:`);
    for (const s of cliSettings().filter((x) => x.group === group)) {
      const names = [s.flag!, ...(s.aliases ?? [])].map((f) => `--${f}`).join(', ');
      const left = `  ${names}${metavar(s) ? ` ${metavar(s)}` : ''}`;
      lines.push(left.length < 33 ? `${left.padEnd(33)}${s.help}` : `${left}\n${' '.repeat(33)}${s.help}`);
    }
  }
  lines.push('Underscores and dashes are interchangeable (--server_port = --server-port).');
  return `${lines.join('\n')}\n`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|');
/** Markdown that reads as code: `--server_port` as the seed servers wrote it is shown with its underscores. */
const code = (text: string) => `\`${cell(text)}\``;

/** The README's table of `edgellm serve` options. */
export function cliSettingsMarkdown(): string {
  const rows = cliSettings().map((s) => {
    const names = [s.flag!, ...(s.aliases ?? [])].map((f) => `--${f}`);
    const arg = metavar(s);
    const first = code(arg ? `${names[0]} ${arg}` : names[0]);
    return `| ${[first, ...names.slice(1).map(code)].join(', ')} | ${cell(s.doc ?? s.help)} |`;
  });
  return ['| option | meaning |', '|---|---|', ...rows].join('\n') + '\n';
}

/** The README's table of Worker variables. */
export function envSettingsMarkdown(): string {
  const rows = SETTINGS.filter((s) => s.env).map((s) => {
    const as = s.flag ? `as \`--${s.flag}\`: ` : '';
    return `| \`${s.env}\` | ${cell(s.envDoc ?? `${as}${s.doc ?? s.help}`)} |`;
  });
  return ['| variable | meaning |', '|---|---|', ...rows].join('\n') + '\n';
}
