/**
 * The server's log: one line per event on stderr, as text for people or JSON for log collectors
 * (`--log-format json`). Request lines come from the app's `onRequestLog`.
 * @module
 */
import { formatRequestLog, requestLogJson, type RequestLog } from '../app/request-log.js';

import { LOG_FORMATS } from '../app/settings.js';

export { LOG_FORMATS };
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Logger {
  info(message: string): void;
  error(message: string): void;
  request(log: RequestLog): void;
}

export interface LoggerOptions {
  format?: LogFormat;
  write?: (line: string) => void;
  now?: () => Date;
  /** Log successful health checks too (load balancers poll them every few seconds). Default false. */
  logHealthChecks?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const json = options.format === 'json';
  // Messages from the runtime may already carry the prefix; JSON has its own fields.
  const bare = (message: string) => message.replace(/^edgellm: /, '');
  const emit = (level: 'info' | 'error', message: string, fields?: Record<string, unknown>) =>
    write(json ? `${JSON.stringify({ time: now().toISOString(), level, msg: message, ...fields })}\n` : `edgellm: ${message}\n`);
  return {
    info: (message) => emit('info', bare(message)),
    error: (message) => emit('error', bare(message)),
    request(log) {
      // Probes: a 200 is routine, and a 503 means "loading" or "stopping", which the server says itself.
      const probe = log.path.endsWith('/health') && (log.status === 200 || log.status === 503);
      if (probe && !options.logHealthChecks) return;
      const level = log.status >= 500 && !probe ? 'error' : 'info';
      const line = formatRequestLog(log);
      if (json) emit(level, line, { type: 'request', ...requestLogJson(log) });
      else emit(level, line);
    },
  };
}
