/**
 * serve(): hosts a fetch app on Node's http server through @hono/node-server, which streams
 * with backpressure and aborts `request.signal` when a client goes away.
 * @module
 */
import { createAdaptorServer } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { App } from '../../app/create-app.js';

export interface ServeOptions {
  host?: string;
  port?: number;
}

export interface RunningServer {
  url: string;
  /** Stops accepting connections and resolves when in-flight responses have finished. */
  close(): Promise<void>;
}

/**
 * Listens with node:http and hands every request to `app.fetch`; `close()` lets in-flight responses finish.
 * @example
 * const server = await serve(createApp({ runtime }), { host: '127.0.0.1', port: 0 });
 * console.log(server.url);   // http://127.0.0.1:<free port>
 * await server.close();
 */
export function serve(app: App, options: ServeOptions = {}): Promise<RunningServer> {
  const server = createAdaptorServer({ fetch: (request: Request) => app.fetch(request) });
  // Long generations must not be cut by Node's default request timeout (5 minutes).
  (server as import('node:http').Server).requestTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 23333, options.host ?? '0.0.0.0', () => {
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            (server as import('node:http').Server).closeIdleConnections?.();
          }),
      });
    });
  });
}
