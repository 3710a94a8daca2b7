/**
 * Clients that go away: the real Node stack (createApp + createNodeRuntime + serve on loopback),
 * streaming and not. The sequence must leave the batch and its KV cache must be freed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/create-app.js';
import { createNodeRuntime, type NodeRuntime } from '../../src/adapters/node/runtime.js';
import { serve, type RunningServer } from '../../src/adapters/node/serve.js';
import { requireBuild } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';
import { until } from '../helpers/until.js';

const dir = sharedModel(STORIES);

describe.skipIf(!dir)('client disconnects free their sequences', () => {
  let runtime: NodeRuntime;
  let server: RunningServer;
  const body = (stream: boolean) =>
    JSON.stringify({ prompt: 'Once upon a time', max_tokens: 450, ignore_eos: true, temperature: 0.8, seed: 1, stream });

  beforeAll(async () => {
    requireBuild();
    // No prefix cache, so every live sequence belongs to a running request.
    runtime = await createNodeRuntime({ model: dir!, dtype: 'fp32', device: 'cpu', cacheMaxBytes: 0, log: () => {} });
    server = await serve(createApp({ runtime }), { host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await runtime?.close();
  });

  it.each([true, false])('stream: %s', async (stream) => {
    const controller = new AbortController();
    const other = fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(false) });
    const response = fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: body(stream), signal: controller.signal,
    });
    // Both are decoding in one batch.
    await until(async () => (await runtime.backendStats()).liveSequences === 2);
    const before = await runtime.backendStats();
    controller.abort();
    await response.catch(() => undefined);
    await until(async () => (await runtime.backendStats()).liveSequences === 1);
    const after = await runtime.backendStats();
    // It left long before the end (the abort travels through the socket; a step here is under a
    // millisecond, so allow for a loaded machine), while the other request kept going.
    expect(after.decodeCalls - before.decodeCalls).toBeLessThan(200);
    const survivor = await (await other).json();
    expect(survivor.usage.completion_tokens).toBe(450);
    await until(async () => (await runtime.backendStats()).liveSequences === 0);
  });
});
