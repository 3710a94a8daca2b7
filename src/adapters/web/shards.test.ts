import { describe, expect, it } from 'vitest';
import { fnv1a, parseShardCount, pickShard, sessionOf, shardName } from './shards.js';

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  new Request(`http://w${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

describe('shards', () => {
  it('hashes with FNV-1a', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
  });

  it('takes the session from the header, else from a /generate body', () => {
    expect(sessionOf(' 7 ', { session_id: 8 })).toBe('7');
    expect(sessionOf(null, { session_id: 8 })).toBe('8');
    expect(sessionOf(null, { session_id: -1 })).toBeUndefined();
    expect(sessionOf(null, { messages: [] })).toBeUndefined();
    expect(sessionOf(null, null)).toBeUndefined();
  });

  it('puts a session on one shard whether it is named by header or body, and leaves the body readable', async () => {
    for (let id = 0; id < 20; id++) {
      const byBody = post('/generate', { prompt: 'hi', session_id: id });
      const shard = await pickShard(byBody, 4);
      expect(await pickShard(post('/generate', { prompt: 'other' }, { 'x-session-id': String(id) }), 4)).toBe(shard);
      expect(await pickShard(new Request('http://w/metrics', { headers: { 'x-session-id': String(id) } }), 4)).toBe(shard);
      expect((await byBody.json()).session_id).toBe(id);
    }
  });

  it('spreads session-less requests by body, sends plain GETs to shard 0, and one shard means no reading', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) seen.add(await pickShard(post('/v1/chat/completions', { messages: [{ role: 'user', content: `q${i}` }] }), 3));
    expect(seen).toEqual(new Set([0, 1, 2]));
    const same = { messages: [{ role: 'user', content: 'same' }] };
    expect(await pickShard(post('/v1/chat/completions', same), 3)).toBe(await pickShard(post('/v1/chat/completions', same), 3));
    expect(await pickShard(new Request('http://w/health'), 3)).toBe(0);
    const unread = post('/generate', { session_id: 3 });
    expect(await pickShard(unread, 1)).toBe(0);
    expect(unread.bodyUsed).toBe(false);
  });

  it('reads SHARDS, refusing a bad value with a 503 that names it', () => {
    expect(parseShardCount(undefined)).toBe(1);
    expect(parseShardCount('')).toBe(1);
    expect(parseShardCount('4')).toBe(4);
    for (const bad of ['many', '0', '2.5', '5000']) {
      expect(() => parseShardCount(bad)).toThrow(expect.objectContaining({ status: 503, code: 'model_load_failed', message: expect.stringMatching(/SHARDS must be an integer from 1 to 1024/) }));
    }
  });

  it('names shard 0 as the model, the others with a suffix', () => {
    expect(shardName('m', 0)).toBe('m');
    expect(shardName('m', 2)).toBe('m#2');
  });
});
