/**
 * The tokenizer thread: encodes long texts for the server thread, so a 600,000-character prompt
 * does not stop `/health` and every stream while it is tokenized. It holds its own copy of the
 * same tokenizer (src/model/hf-tokenizer.ts); started on the first long text.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readTokenizerFiles } from './tokenizer-files.js';
import { createHfTokenizer } from '../../model/hf-tokenizer.js';

export interface EncodeMessage {
  id: number;
  text: string;
  addSpecialTokens: boolean;
}

export type EncodeReply = { id: number; ids: Int32Array } | { id: number; error: string };

const { dir } = workerData as { dir: string };
const files = readTokenizerFiles(dir);
const tokenizer = createHfTokenizer(files.tokenizer, files.config, []);
const port = parentPort!;
port.on('message', ({ id, text, addSpecialTokens }: EncodeMessage) => {
  try {
    const ids = Int32Array.from(tokenizer.encode(text, addSpecialTokens));
    port.postMessage({ id, ids } satisfies EncodeReply, [ids.buffer]);
  } catch (error) {
    port.postMessage({ id, error: (error as Error).message } satisfies EncodeReply);
  }
});
