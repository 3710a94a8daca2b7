/**
 * The engine's Tokenizer for a model directory on disk: the same pure-JS tokenizer the web adapter
 * uses (src/model/hf-tokenizer.ts), fed from tokenizer.json and tokenizer_config.json. The server
 * thread therefore never loads transformers.js (and with it onnxruntime-node a second time).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHfTokenizer } from '../../model/hf-tokenizer.js';
import type { Tokenizer } from '../../runtime/tokenizer.js';

export async function loadTokenizer(dir: string, eosTokenIds: number[]): Promise<Tokenizer> {
  const json = (name: string, optional = false) => {
    const path = join(dir, name);
    if (optional && !existsSync(path)) return {};
    return JSON.parse(readFileSync(path, 'utf8'));
  };
  return createHfTokenizer(json('tokenizer.json'), json('tokenizer_config.json', true), eosTokenIds);
}
