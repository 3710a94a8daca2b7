/**
 * The second start of a GGUF model (the real SmolLM2-135M-Instruct Q4_1) through the real CLI, on an
 * empty EDGELLM_CACHE: the first start converts, rewrites the attention, probes and stores the
 * verdict with the optimized graph; the second finds both and runs no rewrite and no probe (its log
 * says so), and answers exactly as the first did; a changed setting in the key probes again. No
 * timing is asserted (README's GGUF section has the measured starts).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel } from '../helpers/shared-models.js';
import { until } from '../helpers/until.js';

const dir = sharedModel('SmolLM2-135M-Instruct');
const GGUF = dir && join(dir, 'SmolLM2-135M-Instruct.Q4_1.gguf');

describe.skipIf(!dir)('a GGUF model\'s second start restores the load checks from the cache', () => {
  const cache = mkdtempSync(join(tmpdir(), 'edgellm-second-start-'));
  const servers: CliServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(cache, { recursive: true, force: true });
  });
  // One onnxruntime thread: the suite runs two files at once on two cores.
  const start = async (threads = 1) => {
    const server = await startCli([GGUF!, '--threads', String(threads)], 300_000, { EDGELLM_CACHE: cache });
    servers.push(server);
    await until(() => /load checks: .*\n/.test(server.output())); // logged after the "serving" line
    return server;
  };
  const reply = async (server: CliServer) => {
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'SmolLM2-135M-Instruct.Q4_1', messages: [{ role: 'user', content: 'Write a Python function that returns the factorial of n.' }],
      temperature: 0, max_tokens: 40,
    });
    return completion.choices[0].message.content ?? '';
  };
  const checksLine = (server: CliServer) => /load checks: (.*)/.exec(server.output())?.[1] ?? '';

  it('probes once, then restores the verdict: one session, no rewrite, no probe, the same greedy reply', async () => {
    const first = await start();
    expect(first.output()).toMatch(/Converting /);
    expect(checksLine(first)).toMatch(/^run at load; verdict stored in .*load-checks/);
    const attention = /attention: (.*)/.exec(first.output())![1];
    expect(attention).toMatch(/^GroupQueryAttention \(30 layers; probe logits within/);
    const steps = /steps: (.*)/.exec(first.output())![1];
    const text = await reply(first);
    expect(text.length).toBeGreaterThan(20);
    await first.stop();

    const second = await start();
    expect(second.output()).toMatch(/conversion found in the cache/);
    expect(checksLine(second)).toMatch(/^from the cache \(.*load-checks.*\): no rewrite and no probe run$/);
    // The verdict's words, as the first start measured them.
    expect(/attention: (.*)/.exec(second.output())![1]).toBe(attention);
    expect(/steps: (.*)/.exec(second.output())![1]).toBe(steps);
    expect(await reply(second)).toBe(text);
    await second.stop();

    // One verdict folder with its optimized graph and the weights beside it.
    const folders = readdirSync(join(cache, 'load-checks'));
    expect(folders).toHaveLength(1);
    expect(readdirSync(join(cache, 'load-checks', folders[0])).sort()).toEqual([
      expect.stringMatching(/^optimized-.*\.onnx$/), expect.stringMatching(/^optimized-.*\.onnx\.data$/), 'verdict.json',
    ]);
  }, 600_000);

  it('a setting in the key (the thread count) probes again, into a verdict of its own', async () => {
    const other = await start(2);
    expect(other.output()).toMatch(/conversion found in the cache/);
    expect(checksLine(other)).toMatch(/^run at load; verdict stored in/);
    await other.stop();
    expect(readdirSync(join(cache, 'load-checks'))).toHaveLength(2);
  }, 600_000);
});
