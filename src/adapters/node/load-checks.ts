/**
 * The load checks' verdicts across starts: what `OrtCausalLM.create` found (the attention and int8
 * rewrites accepted or not, the step plan) is stored with the rewritten graph under
 * `EDGELLM_CACHE/load-checks/<key>/`, so a later start of the same model with the same settings
 * creates one session from it and runs no rewrite and no probe (`OrtCausalLM.restore`). The key
 * covers everything a verdict depends on; any change to it probes again. See ARCHITECTURE.md.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { arch, cpus, platform } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { EDGELLM_VERSION } from '../../handlers/docs/openapi.js';
import { LOAD_CHECKS_VERSION, type LoadVerdict } from '../../onnx/ort-causal-lm.js';

/** What a verdict depends on besides the model's files. */
export interface LoadCheckSettings {
  /** onnxruntime-node's version. */
  runtime: string;
  executionProviders: unknown;
  threads?: number;
  exactQuantized?: boolean;
  int8MatMul?: boolean;
  /** The attention rewrite's shape (from config.json), or none. */
  attention?: unknown;
  contextLength: number;
  hiddenSize: number;
  expected?: unknown;
  /** Whether KV in place is tried (EDGELLM_KV_IN_PLACE=0 turns it off). */
  kvInPlace?: boolean;
}

/**
 * The model's files as the key sees them: the graph and its external data (the files next to it
 * whose names start with the graph's, e.g. `model_q4.onnx.data`), each by path, size and mtime.
 * A GGUF conversion's folder name already holds the file's sha256 and the importer version.
 */
export function modelFileStamps(path: string): string[] {
  const dir = dirname(path);
  const name = basename(path);
  const files = [name, ...readdirSync(dir).filter((f) => f !== name && f.startsWith(name) && !f.endsWith('.part') && !f.endsWith('.mapping.txt'))].sort();
  return files.map((f) => {
    const st = statSync(join(dir, f));
    return `${join(dir, f)}|${st.size}|${st.mtimeMs}`;
  });
}

/** The folder of the verdict for this model and these settings (its name hashes all of them). */
export function loadCheckDir(cacheRoot: string, path: string, settings: LoadCheckSettings): string {
  const key = JSON.stringify({
    version: LOAD_CHECKS_VERSION,
    // An upgrade may change a rewrite without anyone bumping LOAD_CHECKS_VERSION: never reuse another release's verdict.
    edgellm: EDGELLM_VERSION,
    files: modelFileStamps(path),
    platform: `${platform()}-${arch()}`,
    cpu: cpus()[0]?.model ?? '',
    ...settings,
  });
  return join(cacheRoot, 'load-checks', createHash('sha256').update(key).digest('hex').slice(0, 32));
}

export interface StoredChecks {
  verdict: LoadVerdict;
  /** The optimized graph the serving session wrote (its weights in `<graph>.data` beside it). */
  graph: string;
}

/** A file name for this process's optimized graph: two servers probing at once do not write into each other's files. */
export const optimizedGraphName = () => `optimized-${process.pid}-${Date.now().toString(36)}.onnx`;

/** verdict.json as written: the verdict, its graph's file name, and the model and release that stored it (for pruning). */
interface VerdictFile {
  verdict: LoadVerdict;
  graph: string;
  model?: string;
  edgellm?: string;
}

/**
 * The stored verdict in `dir`, or undefined (none, unreadable, from another version of the checks,
 * or its graph gone). Reading it marks it used (verdict.json's mtime), for `pruneLoadChecks`.
 */
export function readLoadChecks(dir: string): StoredChecks | undefined {
  try {
    const file = join(dir, 'verdict.json');
    const stored = JSON.parse(readFileSync(file, 'utf8')) as VerdictFile;
    if (stored.verdict?.version !== LOAD_CHECKS_VERSION || typeof stored.graph !== 'string' || basename(stored.graph) !== stored.graph) return undefined;
    const graph = join(dir, stored.graph);
    if (!existsSync(graph) || !existsSync(`${graph}.data`)) return undefined;
    const now = new Date();
    utimesSync(file, now, now);
    return { verdict: stored.verdict, graph };
  } catch {
    return undefined;
  }
}

/** Verdicts kept per model (each for other settings: threads, providers, accuracy); the least recently used beyond go. */
export const LOAD_CHECKS_PER_MODEL = 4;
/** A folder without a verdict this old is a load that died while storing one. */
const ABANDONED_MS = 24 * 3600_000;

/**
 * Removes, beside `dir` (just stored for `model`), the verdict folders no start can use any more:
 * those of older load checks (LOAD_CHECKS_VERSION) or written before releases recorded themselves,
 * folders a crashed load left without a verdict a day ago, and the verdicts of `model` beyond the
 * LOAD_CHECKS_PER_MODEL most recently used. Each holds a copy of the model's weights. Returns the
 * folders removed; failures (another process removing the same folder) are ignored.
 */
export async function pruneLoadChecks(dir: string, model: string): Promise<string[]> {
  const root = dirname(dir);
  const same: { path: string; used: number }[] = [];
  const gone: string[] = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (path === dir) continue;
    const file = join(path, 'verdict.json');
    try {
      if (!existsSync(file)) {
        if (statSync(path).isDirectory() && Date.now() - statSync(path).mtimeMs > ABANDONED_MS) gone.push(path);
        continue;
      }
      const stored = JSON.parse(readFileSync(file, 'utf8')) as VerdictFile;
      if (!stored.edgellm || !(stored.verdict?.version >= LOAD_CHECKS_VERSION)) gone.push(path);
      else if (stored.model === model) same.push({ path, used: statSync(file).mtimeMs });
    } catch {
      continue; // unreadable now: perhaps being replaced; left for a later start
    }
  }
  same.sort((a, b) => b.used - a.used);
  gone.push(...same.slice(LOAD_CHECKS_PER_MODEL - 1).map((x) => x.path));
  for (const path of gone) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  return gone;
}

/**
 * Stores a verdict naming the optimized graph written beside it (verdict.json last, renamed into
 * place whole), then removes older graphs of this folder (a verdict replaced after a re-probe).
 */
export async function storeLoadChecks(dir: string, verdict: LoadVerdict, graph: string, model = ''): Promise<void> {
  if (!existsSync(join(dir, graph)) || !existsSync(join(dir, `${graph}.data`))) throw new Error(`onnxruntime did not write ${graph}`);
  const part = join(dir, `verdict.json.${process.pid}.part`);
  await writeFile(part, JSON.stringify({ verdict, graph, model, edgellm: EDGELLM_VERSION } satisfies VerdictFile, null, 1) + '\n');
  await rename(part, join(dir, 'verdict.json'));
  for (const f of readdirSync(dir)) {
    if (f.startsWith('optimized-') && f !== graph && f !== `${graph}.data`) await rm(join(dir, f), { force: true });
  }
}
