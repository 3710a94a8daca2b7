/**
 * The engine's Tokenizer for a model directory on disk: the same pure-JS tokenizer the web adapter
 * uses (src/model/hf-tokenizer.ts), fed from tokenizer.json and tokenizer_config.json. The server
 * thread therefore never loads transformers.js (and with it onnxruntime-node a second time).
 * Long texts are encoded in a tokenizer thread (`encodeAsync`), started when the first one comes.
 * @module
 */
import { Worker } from 'node:worker_threads';
import { createHfTokenizer } from '../../model/hf-tokenizer.js';
import type { Tokenizer } from '../../runtime/tokenizer.js';
import { readTokenizerFiles } from './tokenizer-files.js';
import type { EncodeMessage, EncodeReply } from './tokenizer-thread.js';

export async function loadTokenizer(dir: string, eosTokenIds: number[]): Promise<Tokenizer> {
  const files = readTokenizerFiles(dir);
  const tokenizer = createHfTokenizer(files.tokenizer, files.config, eosTokenIds);
  return { ...tokenizer, encodeAsync: offThreadEncoder(dir, tokenizer) };
}

/**
 * `encodeAsync` on a lazily started thread. If the thread cannot run (or dies), texts are
 * encoded in place instead: slower for the other requests, never wrong.
 */
function offThreadEncoder(dir: string, fallback: Tokenizer): Tokenizer['encodeAsync'] {
  let worker: Worker | undefined;
  let broken = false;
  let nextId = 1;
  const pending = new Map<number, { resolve(ids: number[]): void; reject(error: Error): void }>();
  const start = () => {
    const w = new Worker(threadUrl(), { workerData: { dir } });
    w.unref(); // an idle tokenizer thread does not keep the process alive
    w.on('message', (reply: EncodeReply) => {
      const p = pending.get(reply.id);
      pending.delete(reply.id);
      if ('ids' in reply) p?.resolve(Array.from(reply.ids));
      else p?.reject(new Error(reply.error));
    });
    const die = (error: Error) => {
      broken = true;
      worker = undefined;
      for (const p of pending.values()) p.reject(error);
      pending.clear();
    };
    w.on('error', die);
    w.on('exit', (code) => die(new Error(`the tokenizer thread exited (code ${code})`)));
    return w;
  };
  return async (text, addSpecialTokens) => {
    if (broken) return fallback.encode(text, addSpecialTokens);
    worker ??= start();
    const id = nextId++;
    const ids = new Promise<number[]>((resolve, reject) => pending.set(id, { resolve, reject }));
    worker.postMessage({ id, text, addSpecialTokens } satisfies EncodeMessage);
    try {
      return await ids;
    } catch {
      return fallback.encode(text, addSpecialTokens);
    }
  };
}

/** A separate bundle (dist/tokenizer-thread.js); from the sources (tests) use the built one. */
function threadUrl(): URL {
  const here = import.meta.url;
  return here.includes('/src/adapters/node/') ? new URL('../../../dist/tokenizer-thread.js', here) : new URL('./tokenizer-thread.js', here);
}
