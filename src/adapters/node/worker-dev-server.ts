/**
 * Serves the built Worker (dist/worker.js) in workerd through Miniflare's API, configured from the
 * same wrangler.toml that `wrangler dev` reads: `npm run dev:worker` is `wrangler dev` for hosts
 * where wrangler does not run (it needs Node >= 22). The workerd test suites start it too.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Miniflare, type MiniflareOptions } from 'miniflare';

export interface WranglerConfig {
  main?: string;
  compatibilityDate?: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  assets?: { directory: string; binding?: string; runWorkerFirst: boolean };
  /** Durable Object binding name -> class name. */
  durableObjects: Record<string, string>;
}

type TomlValue = string | number | boolean | string[];

function tomlValue(raw: string, line: number): TomlValue {
  const text = raw.replace(/\s+#.*$/, '').trim();
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text.startsWith("'") && text.endsWith("'")) return text.slice(1, -1);
  try {
    const value = JSON.parse(text);
    if (typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))) return value;
  } catch {
    // reported below
  }
  throw new Error(`wrangler.toml line ${line}: unsupported value ${text} (this reader takes strings, numbers, booleans and string arrays)`);
}

/** The subset of wrangler.toml the dev server needs: main, compatibility, [vars], [assets], Durable Object bindings. */
export function parseWranglerToml(text: string): WranglerConfig {
  const config: WranglerConfig = { compatibilityFlags: [], vars: {}, durableObjects: {} };
  let table = '';
  let entry: Record<string, TomlValue> = {};
  const tables: Array<[string, Record<string, TomlValue>]> = [['', entry]];
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) return;
    const header = /^\[\[?\s*([\w.-]+)\s*\]\]?$/.exec(line);
    if (header) {
      table = header[1];
      entry = {};
      tables.push([table, entry]);
      return;
    }
    const pair = /^([\w-]+)\s*=\s*(.+)$/.exec(line);
    if (!pair) throw new Error(`wrangler.toml line ${i + 1}: cannot read ${JSON.stringify(line)}`);
    entry[pair[1]] = tomlValue(pair[2], i + 1);
  });
  for (const [name, values] of tables) {
    if (name === '') {
      if (typeof values.main === 'string') config.main = values.main;
      if (typeof values.compatibility_date === 'string') config.compatibilityDate = values.compatibility_date;
      if (Array.isArray(values.compatibility_flags)) config.compatibilityFlags = values.compatibility_flags;
    } else if (name === 'vars') {
      for (const [key, value] of Object.entries(values)) config.vars[key] = String(value);
    } else if (name === 'assets' && typeof values.directory === 'string') {
      config.assets = { directory: values.directory, binding: values.binding as string | undefined, runWorkerFirst: values.run_worker_first === true };
    } else if (name === 'durable_objects.bindings' && typeof values.name === 'string' && typeof values.class_name === 'string') {
      config.durableObjects[values.name] = values.class_name;
    }
  }
  return config;
}

export interface WorkerDevOptions {
  /** The folder of wrangler.toml (paths in it are relative to it). */
  root: string;
  config?: WranglerConfig;
  /** Overrides [assets] directory: the folder of model directories. */
  modelsDir?: string;
  /** Added to (and overriding) [vars]. */
  vars?: Record<string, string>;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

/** Miniflare options equivalent to `wrangler dev` on this wrangler.toml, with explicit modules. */
export function workerMiniflareOptions(options: WorkerDevOptions): MiniflareOptions {
  const config = options.config ?? parseWranglerToml(readFileSync(join(options.root, 'wrangler.toml'), 'utf8'));
  if (!config.main) throw new Error('wrangler.toml has no main');
  const main = resolve(options.root, config.main);
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first.`);
  const wasm = join(dirname(main), 'ort-wasm-simd-threaded.wasm');
  const assetsDir = options.modelsDir ?? (config.assets ? resolve(options.root, config.assets.directory) : undefined);
  return {
    // Miniflare cannot discover onnxruntime-web's modules from a script path: list them.
    modules: [
      { type: 'ESModule', path: main, contents: readFileSync(main, 'utf8') },
      { type: 'CompiledWasm', path: wasm, contents: readFileSync(wasm) },
    ],
    modulesRoot: dirname(main),
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    bindings: { ...config.vars, ...options.vars },
    durableObjects: config.durableObjects,
    ...(assetsDir && {
      assets: {
        directory: assetsDir,
        binding: config.assets?.binding ?? 'ASSETS',
        routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: config.assets?.runWorkerFirst ?? true },
      },
    }),
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
  };
}

export interface WorkerDevServer {
  url: string;
  mf: Miniflare;
  dispose(): Promise<void>;
}

export async function startWorkerDevServer(options: WorkerDevOptions): Promise<WorkerDevServer> {
  const mf = new Miniflare(workerMiniflareOptions(options));
  const url = (await mf.ready).href.replace(/\/$/, '');
  return { url, mf, dispose: () => mf.dispose() };
}
