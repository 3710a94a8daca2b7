/**
 * The engine's Tokenizer for a model directory on disk: the same pure-JS tokenizer the web adapter
 * uses (src/model/hf-tokenizer.ts), fed from tokenizer.json and tokenizer_config.json. The server
 * thread therefore never loads transformers.js (and with it onnxruntime-node a second time).
 * @module
 */
import { join } from 'node:path';
import { createHfTokenizer } from '../../model/hf-tokenizer.js';
import type { Tokenizer } from '../../runtime/tokenizer.js';
import { readJsonFile } from './json-file.js';

export async function loadTokenizer(dir: string, eosTokenIds: number[]): Promise<Tokenizer> {
  const tokenizer = readJsonFile(join(dir, 'tokenizer.json'), {
    hint: 'edgellm needs the fast tokenizer file of the transformers.js layout (save it with the model\'s tokenizer, or pass --tokenizer-path DIR)',
  });
  return createHfTokenizer(tokenizer, readJsonFile(join(dir, 'tokenizer_config.json'), { optional: true }), eosTokenIds);
}
