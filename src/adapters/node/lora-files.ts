/**
 * `--lora-model PATH`: finds and reads a LoRA adapter from disk -- a PEFT folder
 * (adapter_config.json + adapter_model.safetensors) or a llama.cpp GGUF LoRA (a .gguf file, or a
 * folder holding one) -- and hashes its files for the conversion cache key.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { dequantize } from '../../gguf/quants.js';
import { readGguf } from '../../gguf/reader.js';
import { peftFilesToGguf, readGgufLora, type GgufLora } from '../../lora/gguf-merge.js';

export interface LoraFiles {
  lora: GgufLora;
  /** sha256 over the adapter's files (part of the merged model's cache key). */
  sha256: string;
  /** The adapter's folder when it holds a tokenizer.json (the default --tokenizer-path). */
  tokenizerDir?: string;
}

/** `flag` names the setting in errors (`--lora-model PATH`, `--lora-modules name=PATH`). */
export function loadLoraFiles(path: string, flag = `--lora-model ${path}`): LoraFiles {
  const full = resolve(path);
  if (!existsSync(full)) throw new Error(`${flag}: no such file or directory.`);
  const dir = statSync(full).isDirectory() ? full : undefined;
  const tokenizerDir = dir && existsSync(join(dir, 'tokenizer.json')) ? dir : undefined;
  const hash = createHash('sha256');
  const name = basename(full);
  if (dir && existsSync(join(dir, 'adapter_config.json'))) {
    const weights = join(dir, 'adapter_model.safetensors');
    if (!existsSync(weights)) {
      const others = readdirSync(dir).filter((f) => f.startsWith('adapter_model.'));
      throw new Error(`${flag}: no adapter_model.safetensors${others.length ? ` (found ${others.join(', ')}; only safetensors can be read, not pickled .bin files)` : ''}.`);
    }
    const configText = readFileSync(join(dir, 'adapter_config.json'), 'utf8');
    const bytes = new Uint8Array(readFileSync(weights));
    hash.update(configText).update(bytes);
    return { lora: peftFilesToGguf(configText, bytes, name, flag), sha256: hash.digest('hex'), tokenizerDir };
  }
  let file = full;
  if (dir) {
    const found = readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.gguf'));
    if (found.length !== 1) {
      throw new Error(`${flag}: expected a PEFT adapter (adapter_config.json + adapter_model.safetensors) or one GGUF LoRA file; the folder holds ${found.length ? found.join(', ') : 'neither'}.`);
    }
    file = join(dir, found[0]);
  } else if (!full.toLowerCase().endsWith('.gguf')) {
    throw new Error(`${flag}: give a PEFT adapter folder or a GGUF LoRA file (.gguf).`);
  }
  const bytes = new Uint8Array(readFileSync(file));
  hash.update(bytes);
  return { lora: readGgufLora(readGguf(bytes), basename(file), dequantize), sha256: hash.digest('hex'), tokenizerDir };
}
