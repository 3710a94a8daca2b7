/**
 * Slow and half-finished clients against the real CLI: a body that never completes gets 408
 * within --request-timeout while /health keeps answering; SIGTERM with such a connection open
 * (and an idle keep-alive one) exits 0 at once instead of waiting for them.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const dir = sharedModel(STORIES);

/** Opens a raw connection and sends the start of a POST whose body never completes. */
function halfRequest(url: string): { socket: Socket; reply: Promise<string> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.write(
    'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt": "Once upon',
  );
  let data = '';
  socket.on('data', (d) => (data += d));
  const reply = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(data));
    socket.on('error', () => resolve(data));
  });
  return { socket, reply };
}

describe.skipIf(!dir)('slow clients', () => {
  it('a body that never completes gets 408 within --request-timeout, while /health answers', async () => {
    const s = await startCli([dir!, '--dtype', 'fp32', '--device', 'cpu', '--request-timeout', '1']);
    try {
      const started = performance.now();
      const slow = [halfRequest(s.url), halfRequest(s.url), halfRequest(s.url)];
      // /health answers while they hang.
      const health = await fetch(`${s.url}/health`);
      expect(health.status).toBe(200);
      const healthAt = performance.now();
      const replies = await Promise.all(slow.map((r) => r.reply));
      const repliedAt = performance.now();
      for (const reply of replies) {
        expect(reply).toMatch(/^HTTP\/1.1 408/);
        expect(reply).toContain('"code":"request_timeout"');
      }
      expect(healthAt).toBeLessThan(repliedAt);
      expect(repliedAt - started).toBeLessThan(10_000); // 1 s, and the server's 1 s check interval, on a busy machine
      // Also over HTTP: HEAD on a GET route, and a malformed id is a 404.
      expect((await fetch(`${s.url}/health`, { method: 'HEAD' })).status).toBe(200);
      expect((await fetch(`${s.url}/v1/models/%ZZ`)).status).toBe(404);
      expect(s.output()).not.toMatch(/internal error/);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('SIGTERM with a half-received request and an idle keep-alive connection open exits 0 promptly', async () => {
    const s = await startCli([dir!, '--dtype', 'fp32', '--device', 'cpu']); // the default 60 s request timeout
    const half = halfRequest(s.url);
    const { hostname, port } = new URL(s.url);
    const idle = connect(Number(port), hostname);
    idle.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'); // answered, then the connection stays open
    await new Promise((resolve) => idle.once('data', resolve));
    await new Promise((r) => setTimeout(r, 100));
    const stopped = performance.now();
    const code = await s.stop('SIGTERM');
    expect(code).toBe(0);
    // Well before the 30 s drain limit (which would exit 1) and the 60 s request timeout.
    expect(performance.now() - stopped).toBeLessThan(10_000);
    await half.reply;
    idle.destroy();
    expect(s.output()).not.toMatch(/internal error/);
  });
});
