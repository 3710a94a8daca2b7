/**
 * Model location: a local transformers.js-layout directory, or a Hugging Face Hub id downloaded once into a
 * cache (atomic `.part` + rename per file, a `.complete` marker so later runs do no network request).
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chooseDtype, chooseDtypeFrom, onnxFileName, type Dtype } from '../../model/model-config.js';
import { createProgress } from './progress.js';

export { onnxFileName, type Dtype } from '../../model/model-config.js';

const MARKER = '.complete';

/** config.json, parsed, when it is there and readable (the model loader reports a broken one). */
function readConfig(dir: string): Record<string, any> | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Picks the dtype to use: the requested one, or config.json's preference, or the first present of fp32, q8, q4, fp16. */
export function pickDtype(dir: string, requested?: Dtype): Dtype {
  const onnxDir = join(dir, 'onnx');
  const files = existsSync(onnxDir) ? readdirSync(onnxDir).filter((f) => f.endsWith('.onnx')).sort() : [];
  return chooseDtypeFrom(readConfig(dir), requested, files, dir);
}

export interface ResolveOptions {
  dtype?: Dtype;
  /** default: process.env.EDGELLM_CACHE ?? ~/.cache/edgellm */
  cacheDir?: string;
  /** default: process.env.HF_ENDPOINT ?? 'https://huggingface.co' */
  endpoint?: string;
  /** default 'main' */
  revision?: string;
  /** default process.env.HF_TOKEN; sent as Authorization: Bearer */
  token?: string;
  fetch?: typeof fetch;
  /** default: a line on stderr */
  log?: (line: string) => void;
  /** Redrawn progress bar (true) or sparse log lines (false); default process.stderr.isTTY. */
  progress?: boolean;
}

const expandHome = (p: string) => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p);

/** Where downloads, GGUF conversions and load verdicts go: `cacheDir`, else EDGELLM_CACHE, else ~/.cache/edgellm. */
export const cacheRoot = (cacheDir?: string) =>
  resolve(expandHome(cacheDir ?? process.env.EDGELLM_CACHE ?? join(homedir(), '.cache', 'edgellm')));
const looksLikePath = (p: string) => /^(\.{1,2}(\/|\\|$)|\/|~|[A-Za-z]:[\\/])/.test(p);
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

/** Returns an absolute local directory: `name` itself when it is a directory, else the cached Hub download. */
export async function resolveModelDir(name: string, options: ResolveOptions = {}): Promise<{ dir: string; downloaded: boolean; hubId?: string }> {
  const local = resolve(expandHome(name));
  if (existsSync(local)) {
    if (!statSync(local).isDirectory()) throw new Error(`Model path ${local} is a file; give the model's directory.`);
    if (!existsSync(join(local, 'config.json'))) {
      throw new Error(`Model directory ${local} has no config.json (expected the transformers.js layout: config.json, tokenizer.json, onnx/model*.onnx).`);
    }
    return { dir: local, downloaded: false };
  }
  if (looksLikePath(name)) throw new Error(`Model path ${name}: no such directory (${local}).`);
  if (!HUB_ID.test(name) || name.includes('..')) {
    throw new Error(`Model "${name}" is neither a local directory nor a Hugging Face Hub id (owner/name).`);
  }
  const revision = options.revision ?? 'main';
  const dir = join(cacheRoot(options.cacheDir), name.replace('/', '--'), encodeURIComponent(revision));
  const marker = join(dir, MARKER);
  if (existsSync(marker) && (!options.dtype || existsSync(join(dir, 'onnx', onnxFileName(options.dtype))))) {
    return { dir, downloaded: false, hubId: name };
  }
  const downloaded = await download(name, dir, revision, options);
  await writeFile(`${marker}.part`, JSON.stringify({ id: name, revision, time: new Date().toISOString() }) + '\n');
  await rename(`${marker}.part`, marker);
  return { dir, downloaded, hubId: name };
}

type Fetched = 'fetched' | 'exists' | 'missing';

async function download(id: string, dir: string, revision: string, options: ResolveOptions): Promise<boolean> {
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const token = options.token ?? process.env.HF_TOKEN;
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  let count = 0;
  let announced = false;

  const get = async (rel: string, optional: boolean): Promise<Fetched> => {
    const target = join(dir, rel);
    if (existsSync(target)) return 'exists';
    const url = `${endpoint}/${id}/resolve/${encodeURIComponent(revision)}/${rel}`;
    const result = await fetchToFile(url, target, {
      ...options,
      endpoint,
      optional,
      describe: `${id}/${rel}`,
      label: rel,
      onStart: () => {
        if (!announced) log(`Downloading ${id} (${revision}) from ${endpoint} into ${dir}`);
        announced = true;
      },
      onStatus: (res) => statusError(res, rel, id, revision, endpoint, Boolean(token)),
    });
    if (result === 'fetched') count++;
    return result;
  };

  await get('config.json', false);
  for (const rel of ['tokenizer.json', 'tokenizer_config.json']) await get(rel, false);
  for (const rel of ['generation_config.json', 'special_tokens_map.json']) await get(rel, true);

  // The same choice as pickDtype makes on the downloaded directory: probe the candidates in its order.
  const where = `${id} at ${endpoint}`;
  const dtype = await chooseDtype(readConfig(dir), options.dtype, async (d) => (await get(`onnx/${onnxFileName(d)}`, !options.dtype)) !== 'missing', where);
  const onnx = onnxFileName(dtype);
  const stem = onnx.slice(0, -'.onnx'.length);
  for (const rel of [`onnx/${stem}.onnx_data`, `onnx/${stem}.onnx.data`]) await get(rel, true);
  if (count) log(`Downloaded ${count} file(s) of ${id} into ${dir}`);
  return count > 0;
}

export interface FetchToFileOptions extends ResolveOptions {
  /** A 404 returns 'missing' instead of throwing. */
  optional?: boolean;
  /** Names the file in errors ("owner/name/file"). */
  describe: string;
  /** The progress bar's label. */
  label: string;
  /** Called once the response is good, before the first byte is written. */
  onStart?: () => void;
  /** The error for a response that is not ok. */
  onStatus: (res: Response) => Error;
}

/**
 * Downloads `url` into `target` (through `target.part`, renamed when complete) with a progress bar
 * on a terminal or sparse lines otherwise. Errors name `endpoint` (default: the URL's origin).
 */
export async function fetchToFile(url: string, target: string, options: FetchToFileOptions): Promise<'fetched' | 'missing'> {
  const token = options.token ?? process.env.HF_TOKEN;
  const doFetch = options.fetch ?? globalThis.fetch;
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const tty = options.progress ?? Boolean(process.stderr.isTTY);
  const endpoint = options.endpoint ?? new URL(url).origin;
  let res: Response;
  try {
    res = await doFetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    const why = (err as Error & { cause?: Error })?.cause?.message ?? (err as Error)?.message;
    throw new Error(
      `The Hugging Face Hub was unreachable at ${endpoint} (${why}) while fetching ${options.describe}. ` +
        `Check the network or HF_ENDPOINT, or give a local model directory path instead.`,
      { cause: err },
    );
  }
  if (res.status === 404 && options.optional) {
    await res.body?.cancel();
    return 'missing';
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw options.onStatus(res);
  }
  options.onStart?.();
  await mkdir(dirname(target), { recursive: true });
  const part = `${target}.part`;
  const lengthHeader = res.headers.get('content-length');
  const total = lengthHeader && !res.headers.get('content-encoding') ? Number(lengthHeader) : undefined;
  const write = tty ? (s: string) => void process.stderr.write(s) : (s: string) => log(s.replace(/\n$/, ''));
  const progress = createProgress(options.label, total, { tty, write });
  const fh = await open(part, 'w');
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await fh.write(chunk);
      bytes += chunk.byteLength;
      progress.update(chunk.byteLength);
    }
    if (total !== undefined && bytes !== total) throw new Error(`got ${bytes} of ${total} bytes`);
  } catch (err) {
    await fh.close();
    await rm(part, { force: true });
    if (tty) process.stderr.write('\n');
    throw new Error(`Download of ${options.describe} from ${endpoint} was interrupted (${(err as Error).message}); run again to resume.`, { cause: err });
  }
  await fh.close();
  progress.done();
  await rename(part, target);
  return 'fetched';
}

function statusError(res: Response, rel: string, id: string, revision: string, endpoint: string, hadToken: boolean): Error {
  const code = res.headers.get('x-error-code');
  const notFound =
    `"${id}" is neither a local directory nor a model on the Hub at ${endpoint} (HTTP ${res.status} for ${rel} at revision ${revision}). ` +
    `Check the spelling, or give a local model directory path.`;
  if (code === 'RepoNotFound' || code === 'RevisionNotFound' || (res.status === 404 && rel === 'config.json')) return new Error(notFound);
  if (res.status === 401 || res.status === 403) {
    return new Error(
      `Access to ${id} on ${endpoint} was denied (HTTP ${res.status}): the model is gated or private (or does not exist). ` +
        (hadToken
          ? 'The token in use (HF_TOKEN) has no access: accept the model licence on the Hub or use another token.'
          : 'Set HF_TOKEN to a Hugging Face access token with access to it.'),
    );
  }
  if (res.status === 404) return new Error(`${id} has no ${rel} at revision ${revision} on ${endpoint}: it is not a transformers.js-layout model (try a dtype it ships, or another repo).`);
  return new Error(`The Hub at ${endpoint} answered HTTP ${res.status} ${res.statusText} for ${id}/${rel}; try again later.`);
}
