import { describe, expect, it } from 'vitest';
import type { RequestLog } from '../app/request-log.js';
import { createLogger } from './logger.js';

const request: RequestLog = { method: 'POST', path: '/generate', status: 200, promptTokens: 5, completionTokens: 9, ttftMs: 12, totalMs: 80, aborted: false };
const fixedNow = () => new Date('2026-01-02T03:04:05.000Z');

function capture(format: 'text' | 'json', logHealthChecks = false) {
  const lines: string[] = [];
  return { lines, logger: createLogger({ format, write: (l) => lines.push(l), now: fixedNow, logHealthChecks }) };
}

describe('createLogger', () => {
  it('writes text lines with one prefix', () => {
    const { lines, logger } = capture('text');
    logger.info('edgellm: listening on http://127.0.0.1:1');
    logger.request(request);
    expect(lines).toEqual(['edgellm: listening on http://127.0.0.1:1\n', 'edgellm: POST /generate 200 in=5 out=9 ttft=12ms 80ms\n']);
  });

  it('writes one JSON object per line, request fields in API names', () => {
    const { lines, logger } = capture('json');
    logger.error('engine error: boom');
    logger.request({ ...request, status: 500 });
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    expect(JSON.parse(lines[0])).toEqual({ time: '2026-01-02T03:04:05.000Z', level: 'error', msg: 'engine error: boom' });
    expect(JSON.parse(lines[1])).toMatchObject({ level: 'error', type: 'request', method: 'POST', path: '/generate', status: 500, prompt_tokens: 5, completion_tokens: 9, ttft_ms: 12, total_ms: 80 });
  });

  it('skips health probes (200, and 503 while loading) unless asked, and never logs them as errors', () => {
    const quiet = capture('json');
    quiet.logger.request({ ...request, method: 'GET', path: '/health' });
    quiet.logger.request({ ...request, method: 'GET', path: '/health', status: 503 });
    quiet.logger.request({ ...request, method: 'GET', path: '/health', status: 500 });
    expect(quiet.lines.map((l) => JSON.parse(l).level)).toEqual(['error']);
    const loud = capture('json', true);
    loud.logger.request({ ...request, method: 'GET', path: '/health' });
    loud.logger.request({ ...request, method: 'GET', path: '/health', status: 503 });
    expect(loud.lines.map((l) => JSON.parse(l).level)).toEqual(['info', 'info']);
  });
});
