/**
 * A model file's JSON, read from disk with errors that name the file: a missing required file says
 * which one and why it is needed, a broken one says where it is broken.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** `optional`: a missing file reads as `{}`; otherwise `hint` says what to do about it. */
export function readJsonFile(path: string, options: { optional?: boolean; hint?: string } = {}): Record<string, any> {
  if (!existsSync(path)) {
    if (options.optional) return {};
    throw new Error(`${path} is missing${options.hint ? `: ${options.hint}` : ''}.`);
  }
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid JSON (${(error as Error).message}); fix or replace ${basename(path)}.`);
  }
}
