/**
 * Reads a tokenizer directory's tokenizer.json and (optional) tokenizer_config.json; an error
 * names the file.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function readTokenizerFiles(dir: string): { tokenizer: object; config: Record<string, unknown> } {
  const json = (name: string, optional = false) => {
    const path = join(dir, name);
    if (optional && !existsSync(path)) return {};
    try {
      return JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new Error(`cannot read the tokenizer file ${path}: ${(error as Error).message}`);
    }
  };
  return { tokenizer: json('tokenizer.json'), config: json('tokenizer_config.json', true) };
}
