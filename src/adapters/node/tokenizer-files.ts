/**
 * Reads a tokenizer directory's tokenizer.json and (optional) tokenizer_config.json; an error
 * names the file.
 * @module
 */
import { join } from 'node:path';
import { readJsonFile } from './json-file.js';

export function readTokenizerFiles(dir: string): { tokenizer: object; config: Record<string, unknown> } {
  return {
    tokenizer: readJsonFile(join(dir, 'tokenizer.json'), {
      hint: "edgellm needs the fast tokenizer file of the transformers.js layout (save it with the model's tokenizer, or pass --tokenizer-path DIR)",
    }),
    config: readJsonFile(join(dir, 'tokenizer_config.json'), { optional: true }),
  };
}
