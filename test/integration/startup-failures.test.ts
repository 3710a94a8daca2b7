/**
 * Start-up failures say what is wrong and what to do: a port in use, a broken config.json, a
 * missing tokenizer.json (each through the real `edgellm serve`).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const stories = sharedModel(STORIES);
const work = mkdtempSync(join(tmpdir(), 'edgellm-startup-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('edgellm serve start-up failures', () => {
  it('a port in use: says so and suggests --port', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const { code, output } = await runCli(['serve', './no/such/model', '--host', '127.0.0.1', '--port', String(port)]);
      expect(code).toBe(1);
      expect(output).toContain(`port ${port} is already in use on 127.0.0.1`);
      expect(output).toContain('--port N');
    } finally {
      taken.close();
    }
  });

  it('a broken config.json: names the file', async () => {
    const dir = join(work, 'broken-config');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama",');
    writeFileSync(join(dir, 'onnx', 'model.onnx'), '');
    const { code, output } = await runCli(['serve', dir, '--port', '0']);
    expect(code).toBe(1);
    expect(output).toContain(`${join(dir, 'config.json')} is not valid JSON`);
  });

  it.skipIf(!stories)('a missing tokenizer.json: names the file and --tokenizer-path', async () => {
    const dir = join(work, 'no-tokenizer');
    mkdirSync(dir);
    for (const name of readdirSync(stories!)) if (name !== 'tokenizer.json') symlinkSync(join(stories!, name), join(dir, name));
    const { code, output } = await runCli(['serve', dir, '--port', '0']);
    expect(code).toBe(1);
    expect(output).toContain(`${join(dir, 'tokenizer.json')} is missing`);
    expect(output).toContain('--tokenizer-path');
  });
});
