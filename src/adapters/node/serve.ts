/**
 * serve(): hosts a fetch app on Node's http server through @hono/node-server, which streams
 * with backpressure and aborts `request.signal` when a client goes away.
 * @module
 */
import { createAdaptorServer } from '@hono/node-server';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { App } from '../../app/create-app.js';

export interface ServeOptions {
  host?: string;
  port?: number;
  /**
   * Longest time to receive a request's headers and body, in ms (default 60 s; 0 = no limit).
   * It does not limit a response: a long stream is not cut. The app answers 408 with an error
   * body (AppOptions.requestTimeoutMs); a second later the connection of a body still not in
   * (one no handler reads) is closed.
   */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open, in ms (default 5 s). */
  keepAliveTimeoutMs?: number;
}

export interface RunningServer {
  url: string;
  /**
   * Stops accepting connections, closes at once the connections that are idle or still sending
   * a request (their handlers see the body end early), and resolves when in-flight responses
   * have finished.
   */
  close(): Promise<void>;
}

export function serve(app: App, options: ServeOptions = {}): Promise<RunningServer> {
  const server = createAdaptorServer({ fetch: (request: Request) => app.fetch(request) }) as Server;
  const timeout = options.requestTimeoutMs ?? 60_000;
  // Node's own requestTimeout answers a bare 408 and is checked only every 30 s: the app's 408
  // and the backstop below replace it.
  server.requestTimeout = 0;
  server.headersTimeout = timeout > 0 ? Math.min(timeout, 60_000) : 60_000;
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5000;

  // Which request each connection is receiving, so that draining can drop half-received ones.
  const receiving = new Map<Socket, IncomingMessage | undefined>();
  let draining = false;
  server.on('connection', (socket: Socket) => {
    receiving.set(socket, undefined);
    socket.once('close', () => receiving.delete(socket));
  });
  server.on('request', (request: IncomingMessage, response) => {
    receiving.set(request.socket, request);
    if (timeout > 0 && !request.complete) {
      const backstop = setTimeout(() => !request.complete && request.socket.destroy(), timeout + 1000);
      backstop.unref();
      request.once('end', () => clearTimeout(backstop));
      request.socket.once('close', () => clearTimeout(backstop));
    }
    response.once('finish', () => {
      if (draining) request.socket.destroy();
      else if (receiving.get(request.socket) === request) receiving.set(request.socket, undefined);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 23333, options.host ?? '0.0.0.0', () => {
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`,
        close: () =>
          new Promise((done) => {
            draining = true;
            server.close(() => done());
            server.closeIdleConnections();
            for (const [socket, request] of receiving) {
              // No request yet (idle, or headers still arriving), or a body still arriving: nothing to finish.
              if (!request || !request.complete) socket.destroy();
            }
          }),
      });
    });
  });
}
