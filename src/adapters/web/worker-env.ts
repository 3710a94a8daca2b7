/**
 * A Worker's configuration from its environment: `[vars]` in wrangler.toml (or secrets) and the
 * binding that holds the model files. Names follow the CLI flags (MODEL = <model>, INSTANCE_NUM =
 * --instance_num, ...). Bad values fail the start-up with a message naming the variable.
 * @module
 */
import { parseLoraModules, settingsFromEnv } from '../../app/settings.js';
import { bindingKind, type ModelBinding } from './binding-fetch.js';
import type { WebAppOptions } from './web-app.js';

/** The variables are the settings table's (src/app/settings.ts); the bindings are the Worker's own. */
export interface WorkerEnv {
  /** Model directory name under the binding or MODEL_BASE_URL, or a full URL. Required. */
  MODEL?: string;
  /** R2 bucket, KV namespace or service binding holding `<model>/...`. */
  MODELS?: ModelBinding;
  /** Static assets binding (`[assets] binding = "ASSETS"`), used when there is no MODELS. */
  ASSETS?: ModelBinding;
  /** Every other variable of the settings table: MODEL_NAMES, DTYPE, INSTANCE_NUM, ... */
  [variable: string]: unknown;
}

export function webAppOptionsFromEnv(env: WorkerEnv): WebAppOptions {
  if (!env.MODEL) throw new Error('MODEL is not set: name the model directory in wrangler.toml [vars] (e.g. MODEL = "karpathy__stories260K").');
  const binding = env.MODELS ?? env.ASSETS;
  if (binding !== undefined && !bindingKind(binding)) throw new Error(`${env.MODELS ? 'MODELS' : 'ASSETS'} is not an R2 bucket, KV namespace, service or assets binding.`);
  const { model: _model, modelBaseUrl, cors, loraModules, ...settings } = settingsFromEnv(env) as Record<string, any>;
  if (!binding && !modelBaseUrl && !/^https?:/.test(env.MODEL)) {
    throw new Error('No model files: bind them as MODELS (R2, KV or a service), serve them as [assets] (binding ASSETS), or set MODEL_BASE_URL.');
  }
  return {
    ...settings,
    model: env.MODEL,
    ...(binding ? { binding } : { baseUrl: modelBaseUrl }),
    cors: cors?.includes('*') ? '*' : cors,
    ...(loraModules ? { loraModules: parseLoraModules(loraModules, 'LORA_MODULES') } : {}),
  };
}
