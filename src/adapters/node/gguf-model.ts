/**
 * `edgellm serve model.gguf`: finds the GGUF file (a path, a folder holding one, or a Hub repo id
 * plus file, `owner/name:Q4_K_M`), converts it once into the cache as a transformers.js-layout
 * folder (keyed by the file's sha256 and the importer version), and returns that folder.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { dequantize } from '../../gguf/quants.js';
import { readGguf } from '../../gguf/reader.js';
import { mergeGgufLora, type GgufLora } from '../../lora/gguf-merge.js';
import { stackLoras, type LoraStack } from '../../lora/lora-stack.js';
import { decoderSpec } from '../../onnx/gguf-decoder-graph.js';
import {
  convertGguf, ggufDataName, ggufModelJson, GGUF_IMPORTER_VERSION, type GgufAccuracy, type GgufDtype,
} from '../../onnx/gguf-import.js';
import type { ExternalDataSink } from '../../onnx/onnx-graph-writer.js';
import { fetchToFile, type ResolveOptions } from './model-files.js';
import { createProgress } from './progress.js';

const HUB_FILE = /^([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*):([\w.-]+)$/;
const expandHome = (p: string) => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p);

/** True when `name` means a GGUF model: a .gguf path, a folder with a .gguf and no config.json, or owner/name:QUANT. */
export function isGgufModel(name: string): boolean {
  if (HUB_FILE.test(name) && !existsSync(name)) return true;
  const local = resolve(expandHome(name));
  if (!existsSync(local)) return name.toLowerCase().endsWith('.gguf');
  if (!statSync(local).isDirectory()) return local.toLowerCase().endsWith('.gguf');
  return !existsSync(join(local, 'config.json')) && readdirSync(local).some((f) => f.toLowerCase().endsWith('.gguf'));
}

export interface GgufResolveOptions extends ResolveOptions {
  accuracy?: GgufAccuracy;
  /** A LoRA adapter merged into the weights before the graph is built (its hash joins the cache key). */
  lora?: { sha256: string; lora: GgufLora };
  /**
   * LoRA adapters applied at run time (`--lora-modules`), in adapter index order (the first is
   * index 1); `name` is the model id. Their names and hashes join the cache key.
   */
  loraModules?: { name: string; sha256: string; lora: GgufLora }[];
}

export interface GgufModel {
  /** The converted transformers.js-layout folder. */
  dir: string;
  dtype: GgufDtype;
  /** The GGUF file on disk. */
  file: string;
  /** A name for clients: the file name without .gguf. */
  name: string;
  /** Whether this call converted (false: the cache had it). */
  converted: boolean;
  /** Milliseconds spent finding, hashing and (if needed) converting. */
  ms: number;
}

const cacheRoot = (options: ResolveOptions) =>
  resolve(expandHome(options.cacheDir ?? process.env.EDGELLM_CACHE ?? join(homedir(), '.cache', 'edgellm')));

/** Resolves and converts (once) a GGUF model; see the module comment. */
export async function resolveGgufModel(name: string, dtype: GgufDtype, options: GgufResolveOptions = {}): Promise<GgufModel> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const file = await locateGguf(name, options);
  const sha = await fileSha256(file, cacheRoot(options));
  const accuracy = options.accuracy ?? 'exact';
  const loraKey = (options.lora ? `-lora-${options.lora.sha256.slice(0, 32)}` : '') + loraModulesKey(options.loraModules);
  const dir = join(cacheRoot(options), 'gguf', `${sha.slice(0, 32)}-v${GGUF_IMPORTER_VERSION}${accuracy === 'exact' ? '' : `-${accuracy}`}${loraKey}`);
  const onnxPath = join(dir, 'onnx', `${dtype === 'fp32' ? 'model' : 'model_q4'}.onnx`);
  const result = { dir, dtype, file, name: basename(file).replace(/\.gguf$/i, '') };
  const mappingPath = `${onnxPath}.mapping.txt`;
  if (existsSync(onnxPath)) {
    if (existsSync(mappingPath)) for (const line of readFileSync(mappingPath, 'utf8').trim().split('\n')) log(`  ${line}`);
    return { ...result, converted: false, ms: Date.now() - started };
  }

  log(`Converting ${file} (${dtype === 'fp32' ? 'dequantized to fp32' : 'its own quantization'}) into ${dir}`);
  let gguf = readGguf(readWholeFile(file));
  const json = ggufModelJson(gguf, dtype);
  let merged: string[] = [];
  if (options.lora) {
    const result = mergeGgufLora(decoderSpec(json.config), gguf.tensors, options.lora.lora, dequantize);
    gguf = { ...gguf, tensors: result.tensors };
    merged = result.lines;
  }
  let stack: LoraStack | undefined;
  if (options.loraModules?.length) {
    stack = stackLoras(decoderSpec(json.config), gguf.tensors, options.loraModules.map((m) => ({ ...m.lora, name: m.name })));
    merged = [...merged, ...stack.lines];
  }
  // Per process, so two servers converting the same file at once do not write into each other's files.
  const part = `.${process.pid}.part`;
  await mkdir(join(dir, 'onnx'), { recursive: true });
  for (const [rel, value] of [
    ['config.json', json.config],
    ['tokenizer.json', json.tokenizer],
    ['tokenizer_config.json', json.tokenizerConfig],
    ['generation_config.json', json.generationConfig],
  ] as const) {
    // The config's preferred dtype is the first one converted; later ones leave it.
    if (rel === 'config.json' && existsSync(join(dir, rel))) continue;
    await writeFile(`${join(dir, rel)}${part}`, JSON.stringify(value, null, 2) + '\n');
    await rename(`${join(dir, rel)}${part}`, join(dir, rel));
  }
  const tty = options.progress ?? Boolean(process.stderr.isTTY);
  const write = tty ? (s: string) => void process.stderr.write(s) : (s: string) => log(s.replace(/\n$/, ''));
  const total = gguf.tensors.reduce((n, t) => n + t.data.byteLength, 0);
  const progress = createProgress(`converting ${basename(file)}`, total, { tty, write });
  const dataPath = join(dir, 'onnx', ggufDataName(dtype));
  const sink = new FileSink(`${dataPath}${part}`, ggufDataName(dtype));
  let conversion;
  try {
    conversion = convertGguf(gguf, json.config, sink, { dtype, accuracy, lora: stack, onTensor: (t) => progress.update(t.data.byteLength) });
  } catch (error) {
    sink.close();
    await rm(`${dataPath}${part}`, { force: true });
    throw error;
  }
  sink.close();
  progress.done();
  const mapping = [...merged, ...conversion.mapping];
  await writeFile(mappingPath, mapping.join('\n') + '\n');
  await writeFile(`${onnxPath}${part}`, conversion.model);
  await rename(`${dataPath}${part}`, dataPath);
  await rename(`${onnxPath}${part}`, onnxPath); // last: its presence marks a complete conversion
  for (const line of mapping) log(`  ${line}`);
  return { ...result, converted: true, ms: Date.now() - started };
}

/** The cache key's part for run-time adapters: their ids and file hashes, in index order. */
function loraModulesKey(modules: GgufResolveOptions['loraModules']): string {
  if (!modules?.length) return '';
  const hash = createHash('sha256').update(JSON.stringify(modules.map((m) => [m.name, m.sha256])));
  return `-modules-${hash.digest('hex').slice(0, 32)}`;
}

/** The file in one buffer (readFile stops at 2 GiB; a typed array holds up to 4 GiB in Node 20). */
function readWholeFile(path: string): Uint8Array {
  const size = statSync(path).size;
  if (size > 2 ** 32) throw new Error(`${path} is ${(size / 2 ** 30).toFixed(1)} GiB: GGUF files over 4 GiB are not supported yet.`);
  const bytes = new Uint8Array(size);
  const fd = openSync(path, 'r');
  try {
    for (let at = 0; at < size; ) {
      const n = readSync(fd, bytes, at, Math.min(size - at, 1 << 30), at);
      if (n === 0) throw new Error(`${path} ended after ${at} of ${size} bytes`);
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** Writes external data straight to a file. */
class FileSink implements ExternalDataSink {
  private fd: number;
  private size = 0;
  constructor(path: string, readonly location: string) {
    this.fd = openSync(path, 'w');
  }
  append(bytes: Uint8Array): number {
    const offset = this.size;
    for (let at = 0; at < bytes.byteLength; ) at += writeSync(this.fd, bytes, at, bytes.byteLength - at, offset + at);
    this.size += bytes.byteLength;
    return offset;
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** The GGUF file `name` stands for, downloading it from the Hub for owner/name:QUANT. */
export async function locateGguf(name: string, options: ResolveOptions): Promise<string> {
  const local = resolve(expandHome(name));
  if (existsSync(local)) {
    if (!statSync(local).isDirectory()) return local;
    const found = readdirSync(local).filter((f) => f.toLowerCase().endsWith('.gguf'));
    if (found.length !== 1) {
      throw new Error(`Model directory ${local} holds ${found.length ? `${found.length} GGUF files (${found.join(', ')}); give one of them` : 'no GGUF file and no config.json'}.`);
    }
    return join(local, found[0]);
  }
  const hub = HUB_FILE.exec(name);
  if (!hub) throw new Error(`GGUF model ${name}: no such file (${local}).`);
  return downloadGguf(hub[1], hub[2], options);
}

/**
 * owner/name:QUANT -> the one .gguf file of the repo whose name has QUANT as a part
 * (`-Q4_K_M.gguf`, `.Q4_K_M.gguf`; case-insensitive), from the Hub's file listing.
 */
async function downloadGguf(id: string, quant: string, options: ResolveOptions): Promise<string> {
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const revision = options.revision ?? 'main';
  const token = options.token ?? process.env.HF_TOKEN;
  const dir = join(cacheRoot(options), id.replace('/', '--'), encodeURIComponent(revision), 'gguf');
  const part = new RegExp(`(^|[-.])${quant.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[-.])`, 'i');
  const matches = (file: string) => file.toLowerCase().endsWith('.gguf') && part.test(basename(file).replace(/\.gguf$/i, ''));
  const cached = existsSync(dir) ? readdirSync(dir).filter((f) => matches(f) && !f.endsWith('.part')) : [];
  if (cached.length === 1) return join(dir, cached[0]);

  const listUrl = `${endpoint}/api/models/${id}/tree/${encodeURIComponent(revision)}?recursive=true`;
  let res: Response;
  try {
    res = await (options.fetch ?? globalThis.fetch)(listUrl, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    throw new Error(`The Hugging Face Hub was unreachable at ${endpoint} (${(err as Error).message}) while listing ${id}.`, { cause: err });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`Could not list the files of ${id} at ${endpoint} (HTTP ${res.status}): check the repo id${token ? '' : ', or set HF_TOKEN for a gated repo'}.`);
  }
  const listing = (await res.json()) as { type?: string; path: string }[];
  const files = listing.filter((e) => e.type !== 'directory' && matches(e.path)).map((e) => e.path);
  const all = listing.filter((e) => e.path.toLowerCase().endsWith('.gguf')).map((e) => e.path);
  if (files.length !== 1) {
    throw new Error(
      files.length
        ? `${id} has ${files.length} GGUF files for ${quant} (${files.join(', ')}); split files are not supported, pick one quantization with a single file.`
        : `${id} has no GGUF file for ${quant} (its GGUF files: ${all.join(', ') || 'none'}).`,
    );
  }
  const target = join(dir, basename(files[0]));
  await fetchToFile(`${endpoint}/${id}/resolve/${encodeURIComponent(revision)}/${files[0].split('/').map(encodeURIComponent).join('/')}`, target, {
    ...options,
    endpoint,
    describe: `${id}/${files[0]}`,
    label: files[0],
    onStart: () => (options.log ?? ((l: string) => void process.stderr.write(`${l}\n`)))(`Downloading ${id}/${files[0]} from ${endpoint}`),
    onStatus: (r) => new Error(`The Hub at ${endpoint} answered HTTP ${r.status} for ${id}/${files[0]}.`),
  });
  return target;
}

/**
 * sha256 of the file, remembered per (path, size, mtime) in the cache so a second start does not
 * read the whole file again.
 */
async function fileSha256(path: string, cache: string): Promise<string> {
  const st = statSync(path);
  const key = `${path}|${st.size}|${st.mtimeMs}`;
  const indexPath = join(cache, 'gguf', 'sha256.json');
  let index: Record<string, string> = {};
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch {
    // no index yet
  }
  if (index[key]) return index[key];
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const sha = hash.digest('hex');
  index[key] = sha;
  await mkdir(join(cache, 'gguf'), { recursive: true });
  await writeFile(`${indexPath}.${process.pid}.part`, JSON.stringify(index, null, 1));
  await rename(`${indexPath}.${process.pid}.part`, indexPath);
  return sha;
}
