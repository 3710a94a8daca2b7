/**
 * The Worker with SHARDS = 2 in workerd (Miniflare): two Durable Objects serve one model; a session
 * stays on its shard and keeps its history there, session-less requests spread over both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerDevServer } from '../../tools/workerd-dev/server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';
import { startWorkerd } from '../helpers/workerd.js';

const stories = sharedModel(STORIES);

describe.skipIf(!stories)('Durable Object shards in workerd', () => {
  let server: WorkerDevServer;
  beforeAll(async () => {
    server = await startWorkerd({ MODEL: STORIES, EMBEDDING_MODEL: '', SHARDS: '2' });
  });
  afterAll(() => server?.dispose());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('keeps each /generate session on one shard with its history, and uses both shards', async () => {
    const shards = new Map<number, string>();
    await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async (id) => {
        const turn1 = await post('/generate', { prompt: 'Once upon a time', session_id: id, request_output_len: 4, temperature: 0 });
        expect(turn1.status).toBe(200);
        const first = await turn1.json();
        // The second turn names the session by header only: the same shard, which holds the history.
        const turn2 = await post('/generate', { prompt: 'The end', sequence_start: false, request_output_len: 4, temperature: 0 }, { 'x-session-id': String(id) });
        expect(turn2.status).toBe(200);
        expect(turn2.headers.get('x-edgellm-shard')).toBe(turn1.headers.get('x-edgellm-shard'));
        const second = await turn2.json();
        expect(second.input_tokens).toBeGreaterThan(first.input_tokens + first.tokens);
        expect(second.history_tokens).toBeGreaterThan(0);
        shards.set(id, turn1.headers.get('x-edgellm-shard')!);
      }),
    );
    expect(new Set(shards.values())).toEqual(new Set(['0', '1']));
    // A shard does not hold the other shard's sessions: asking shard 0's /metrics for its count.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const held = [...shards.values()].filter((s) => s === '0').length;
    expect(metrics).toMatch(new RegExp(`^edgellm:sessions_open ${held}$`, 'm'));
  });

  it('spreads session-less chat requests over the shards', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const response = await post('/v1/chat/completions', { messages: [{ role: 'user', content: `Tell me story ${i}` }], max_tokens: 2 });
      expect(response.status).toBe(200);
      seen.add(response.headers.get('x-edgellm-shard')!);
      await response.text();
    }
    expect(seen).toEqual(new Set(['0', '1']));
  });
});
