/**
 * One `edgellm serve` of the SmolLM2-135M-Instruct Q4_1 GGUF per client suite, on loopback, with
 * room for a whole batch of concurrent requests and one onnxruntime thread (the suites run two
 * files at once on two cores). `GGUF` is undefined, with a message, when ../shared lacks the file.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, SMOLLM2 } from '../helpers/shared-models.js';

const dir = sharedModel(SMOLLM2);
const file = dir && join(dir, 'SmolLM2-135M-Instruct.Q4_1.gguf');
if (file && !existsSync(file)) console.warn(`[edgellm tests] skipping the client suites: ${file} not found`);
export const GGUF = file && existsSync(file) ? file : undefined;
/** The name clients send as `model`. */
export const MODEL = 'SmolLM2-135M-Instruct.Q4_1';

export function startSmolLM2(): Promise<CliServer> {
  // Conversion on a cold cache plus a model load on a busy two-core box.
  return startCli([GGUF!, '--threads', '1', '--instance-num', '48'], 240_000);
}
