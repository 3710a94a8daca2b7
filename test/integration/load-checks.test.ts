/**
 * Load-check verdicts for an ONNX model folder (stories260K) through the real CLI: the first start
 * stores them, the second restores them and runs no probe, with the same greedy text; a cache that
 * cannot be written still serves, and says the verdict was not stored.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';
import { until } from '../helpers/until.js';

const dir = sharedModel(STORIES);

describe.skipIf(!dir)('load-check verdicts for an ONNX model folder (stories260K)', () => {
  const work = mkdtempSync(join(tmpdir(), 'edgellm-load-checks-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const serve = async (cache: string, run: (server: CliServer) => Promise<void>) => {
    const server = await startCli([dir!, '--dtype', 'fp32', '--threads', '1'], 60_000, { EDGELLM_CACHE: cache });
    try {
      await until(() => /load checks: .*\n/.test(server.output()));
      await run(server);
    } finally {
      await server.stop();
    }
  };
  const story = async (server: CliServer) => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'karpathy__stories260K', prompt: 'Once upon a time', temperature: 0, max_tokens: 40 }),
    });
    return ((await res.json()) as { choices: { text: string }[] }).choices[0].text;
  };

  it('stores the verdict on the first start and restores it on the second, with the same greedy text', async () => {
    const cache = join(work, 'cache');
    let first = '';
    await serve(cache, async (server) => {
      expect(server.output()).toMatch(/load checks: run at load; verdict stored in .*load-checks/);
      first = await story(server);
    });
    await serve(cache, async (server) => {
      expect(server.output()).toMatch(/load checks: from the cache \(.*load-checks.*\): no rewrite and no probe run/);
      expect(await story(server)).toBe(first);
    });
    expect(first).toMatch(/^, there was a little girl named Lily/);
  }, 120_000);

  it('serves when the cache cannot hold the verdict, and says so', async () => {
    const notADir = join(work, 'a-file');
    writeFileSync(notADir, '');
    await serve(notADir, async (server) => {
      expect(server.output()).toMatch(/load checks: run at load; the verdict cannot be stored \(/);
      expect(await story(server)).toMatch(/^, there was a little girl named Lily/);
    });
  }, 120_000);
});
