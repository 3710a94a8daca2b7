/**
 * Sampling parameters of `edgellm client` (`/params temperature=0.7 top_k=40`, `--params`):
 * parsed and checked here with the server's own ranges, so a typo is answered at once with the
 * allowed values instead of by a 400 after the user has typed a whole message.
 * @module
 */

export type ParamValue = number | boolean | string;
/** Wire names (the server's snake_case) -> values; absent = the server's default. */
export type Params = Readonly<Record<string, ParamValue>>;

interface ParamSpec {
  kind: 'number' | 'int' | 'bool' | 'string' | 'choice';
  /** For 'choice': the allowed values. */
  values?: string[];
  min?: number;
  max?: number;
  /** min is exclusive (repetition_penalty must be > 0). */
  above?: boolean;
  aliases?: string[];
}

// Ranges mirror src/handlers/shared/sampling-schema.ts, except max_tokens >= 1: 0 new tokens is no reply.
const SPECS: Record<string, ParamSpec> = {
  temperature: { kind: 'number', min: 0, max: 2 },
  top_p: { kind: 'number', min: 0, max: 1 },
  top_k: { kind: 'int', min: -1 },
  min_p: { kind: 'number', min: 0, max: 1 },
  repetition_penalty: { kind: 'number', min: 0, above: true, max: 10, aliases: ['repeat_penalty'] },
  presence_penalty: { kind: 'number', min: -2, max: 2 },
  frequency_penalty: { kind: 'number', min: -2, max: 2 },
  max_tokens: { kind: 'int', min: 1, aliases: ['request_output_len', 'max_new_tokens', 'max_completion_tokens', 'n_predict'] },
  min_tokens: { kind: 'int', min: 0 },
  seed: { kind: 'int' },
  num_beams: { kind: 'int', min: 1, max: 16 },
  stop: { kind: 'string' },
  ignore_eos: { kind: 'bool' },
  /** json: the reply is a JSON object, enforced while decoding (response_format json_object). */
  response_format: { kind: 'choice', values: ['json', 'text'] },
};

export const PARAM_NAMES = Object.keys(SPECS);

const ALIASES = new Map<string, string>(
  Object.entries(SPECS).flatMap(([name, spec]) => [name, ...(spec.aliases ?? [])].map((alias): [string, string] => [alias, name])),
);

export class ParamError extends Error {}

/**
 * Splits `a=1 b="two words" c=` into [key, raw value] pairs. A value in double quotes is a JSON
 * string, so stop strings can hold spaces and `\n`.
 */
export function splitAssignments(text: string): Array<[key: string, value: string]> {
  const pairs: Array<[string, string]> = [];
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  skipSpace();
  while (i < text.length) {
    const start = i;
    while (i < text.length && !/[\s=]/.test(text[i])) i++;
    const key = text.slice(start, i);
    if (text[i] !== '=') throw new ParamError(`expected key=value, got '${key}'`);
    i++;
    let value: string;
    if (text[i] === '"') {
      const open = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      if (i >= text.length) throw new ParamError(`${key}: unterminated quoted value`);
      i++;
      try {
        value = JSON.parse(text.slice(open, i)) as string;
      } catch {
        throw new ParamError(`${key}: invalid quoted value ${text.slice(open, i)}`);
      }
    } else {
      const valueStart = i;
      while (i < text.length && !/\s/.test(text[i])) i++;
      value = text.slice(valueStart, i);
    }
    if (!key) throw new ParamError(`missing a name before '=${value}'`);
    pairs.push([key, value]);
    skipSpace();
  }
  return pairs;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function range({ min, max, above }: ParamSpec): string {
  if (min !== undefined && max !== undefined) return above ? ` above ${min} and at most ${max}` : ` from ${min} to ${max}`;
  if (min !== undefined) return above ? ` above ${min}` : ` >= ${min}`;
  return max === undefined ? '' : ` <= ${max}`;
}

/** One value, converted and checked against its spec. */
export function parseValue(name: string, raw: string): ParamValue {
  const spec = SPECS[name];
  if (spec.kind === 'string') return raw;
  if (spec.kind === 'choice') {
    if (spec.values!.includes(raw.toLowerCase())) return raw.toLowerCase();
    throw new ParamError(`${name} must be one of ${spec.values!.join(', ')} (got '${raw}')`);
  }
  if (spec.kind === 'bool') {
    const lower = raw.toLowerCase();
    if (TRUE.has(lower)) return true;
    if (FALSE.has(lower)) return false;
    throw new ParamError(`${name} must be true or false (got '${raw}')`);
  }
  const what = spec.kind === 'int' ? 'an integer' : 'a number';
  const value = NUMBER.test(raw) ? Number(raw) : Number.NaN;
  const inRange =
    (spec.min === undefined || (spec.above ? value > spec.min : value >= spec.min)) && (spec.max === undefined || value <= spec.max);
  if (!Number.isFinite(value) || (spec.kind === 'int' && !Number.isInteger(value)) || !inRange) {
    throw new ParamError(`${name} must be ${what}${range(spec)} (got '${raw}')`);
  }
  return value;
}

/**
 * Applies `key=value` assignments to `current`, all or none: the first bad one throws a
 * ParamError and nothing changes. `key=` (empty) goes back to the server's default.
 */
export function applyParams(current: Params, text: string): Params {
  const next: Record<string, ParamValue> = { ...current };
  for (const [key, raw] of splitAssignments(text)) {
    const name = ALIASES.get(key.toLowerCase().replace(/-/g, '_'));
    if (!name) throw new ParamError(`unknown parameter '${key}'; known: ${PARAM_NAMES.join(', ')}`);
    if (raw === '') delete next[name];
    else next[name] = parseValue(name, raw);
  }
  return next;
}

/** `temperature=0.7 top_k=40`, in a form applyParams reads back. */
export function formatParams(params: Params): string {
  return PARAM_NAMES.filter((name) => params[name] !== undefined)
    .map((name) => {
      const value = params[name];
      return `${name}=${typeof value === 'string' && /^$|[\s"\\]/.test(value) ? JSON.stringify(value) : value}`;
    })
    .join(' ');
}

/** The request fields for an endpoint: /generate calls max_tokens `request_output_len`. */
export function toWireParams(params: Params, endpoint: 'generate' | 'chat'): Record<string, ParamValue | object> {
  const { max_tokens: maxTokens, response_format: format, ...rest } = params;
  const wire: Record<string, ParamValue | object> = { ...rest };
  if (format === 'json') wire.response_format = { type: 'json_object' };
  if (maxTokens !== undefined) wire[endpoint === 'generate' ? 'request_output_len' : 'max_tokens'] = maxTokens;
  return wire;
}
