/**
 * Serves the built Worker (dist/worker.js) in workerd through Miniflare's API, configured from the
 * same wrangler.toml that `wrangler dev` reads: `npm run dev:worker` is `wrangler dev` for hosts
 * where wrangler does not run (it needs Node >= 22). The workerd test suites start it too.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Miniflare, type MiniflareOptions } from 'miniflare';

export interface WranglerConfig {
  main?: string;
  compatibilityDate?: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  assets?: { directory: string; binding?: string; runWorkerFirst: boolean };
  /** Durable Object binding name -> class name. */
  durableObjects: Record<string, string>;
  /** `[[r2_buckets]]`: binding name -> bucket name. */
  r2Buckets?: Record<string, string>;
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

/** The subset of wrangler.toml the dev server needs: main, compatibility, [vars], [assets], Durable Object and R2 bindings. */
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
    } else if (name === 'r2_buckets' && typeof values.binding === 'string' && typeof values.bucket_name === 'string') {
      (config.r2Buckets ??= {})[values.binding] = values.bucket_name;
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
  /** Hears the model files left out of the static assets for their size (default: a warning). */
  onSkippedAssets?: (files: string[]) => void;
  /** Added to (and overriding) [vars]. */
  vars?: Record<string, string>;
  /**
   * The local R2 buckets: `s3Credentials` open them to Miniflare's S3 endpoint
   * (`<url>/cdn-cgi/local/r2/s3/<bucket>`, for scripts/r2-upload.mjs), `persist` keeps their objects
   * in a folder between runs (else in memory).
   */
  r2?: { s3Credentials?: { accessKeyId: string; secretAccessKey: string }; persist?: string };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

/** Workers static assets take files up to 25 MiB; Miniflare refuses a whole folder that holds a larger one. */
export const MAX_ASSET_BYTES = 25 * 1024 * 1024;

/**
 * The folder to give Miniflare as static assets: `dir` itself, or, when it holds files over the
 * 25 MiB asset limit (a GGUF beside the ONNX models, say), a mirror of symbolic links to the
 * others in the temp folder (Miniflare follows links). `onSkip` hears the files left out.
 */
export function assetsFolder(dir: string, onSkip: (files: string[]) => void = () => {}): string {
  if (!existsSync(dir)) return dir; // Miniflare says what is missing
  const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile());
  const tooLarge = new Set(files.filter((f) => statSync(join(dir, f)).size > MAX_ASSET_BYTES));
  if (tooLarge.size === 0) return dir;
  onSkip([...tooLarge].map((f) => join(dir, f)));
  // Named after the folder and its listing, built aside and renamed into place: concurrent test
  // files reuse one mirror, and a changed folder gets a new one.
  const listing = files.map((f) => `${f}\t${statSync(join(dir, f)).size}`).join('\n');
  const key = createHash('sha256').update(`${resolve(dir)}\n${listing}`).digest('hex').slice(0, 16);
  const mirror = join(tmpdir(), `edgellm-assets-${key}`);
  if (existsSync(mirror)) return mirror;
  const staging = `${mirror}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  for (const file of files) {
    if (tooLarge.has(file)) continue;
    mkdirSync(dirname(join(staging, file)), { recursive: true });
    symlinkSync(resolve(dir, file), join(staging, file));
  }
  try {
    renameSync(staging, mirror);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process put it in place first
  }
  return mirror;
}

const warnSkipped = (files: string[]) =>
  console.warn(`edgellm: left out of the Worker's static assets (over 25 MiB; serve large models from R2): ${files.map((f) => relative(process.cwd(), f)).join(', ')}`);

/** Miniflare options equivalent to `wrangler dev` on this wrangler.toml, with explicit modules. */
export function workerMiniflareOptions(options: WorkerDevOptions): MiniflareOptions {
  const config = options.config ?? parseWranglerToml(readFileSync(join(options.root, 'wrangler.toml'), 'utf8'));
  if (!config.main) throw new Error('wrangler.toml has no main');
  const main = resolve(options.root, config.main);
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first.`);
  const wasm = join(dirname(main), 'ort-wasm-simd-threaded.wasm');
  const modelsDir = options.modelsDir ?? (config.assets ? resolve(options.root, config.assets.directory) : undefined);
  const assetsDir = modelsDir && assetsFolder(modelsDir, options.onSkippedAssets ?? warnSkipped);
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
    ...(config.r2Buckets && {
      r2Buckets: Object.fromEntries(
        Object.entries(config.r2Buckets).map(([binding, bucket]) => [binding, { id: bucket, ...(options.r2?.s3Credentials && { s3Credentials: options.r2.s3Credentials }) }]),
      ),
      ...(options.r2?.persist && { r2Persist: options.r2.persist }),
    }),
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
