import { describe, expect, it } from 'vitest';
import { SETTINGS, settingsFromEnv } from '../app/settings.js';
import { parseServeArgs, SERVE_HELP, UsageError } from './cli-args.js';

describe('edgellm serve flags, from the settings table', () => {
  it('reads both seed spellings, repeated and comma-separated lists, and the shortcuts', () => {
    const args = parseServeArgs([
      'api_server', '--base_model', 'm', '--server_port', '0', '--server-name', '127.0.0.1', '--api-keys', 'a,b', '--api_keys', 'c',
      '--allow-origins', 'https://x', '--cors', 'https://y', '--instance_num', '4', '--load_in_8bit', '--gpus', '1,2', '--log-format', 'json',
    ]);
    expect(args).toMatchObject({ host: '127.0.0.1', port: 0, apiKeys: ['a', 'b', 'c'], cors: ['https://y', 'https://x'], logFormat: 'json' });
    expect(args.runtime).toMatchObject({ model: 'm', maxConcurrent: 4, dtype: 'q8', device: 'cuda', deviceId: 1 });
    expect(args.warnings).toEqual(['--gpus 1,2: using GPU 1 only (one model replica per server for now).']);
    expect(parseServeArgs(['m', '--cors', '*']).cors).toBe('*');
    expect(parseServeArgs(['m']).port).toBe(23333);
  });

  it.each([
    [['m', '--instance-num', '0'], '--instance-num must be an integer >= 1, not "0".'],
    [['m', '--server_port', 'x'], '--server-port must be an integer >= 0, not "x".'],
    [['m', '--chat-template', 'vicuna'], '--chat-template must be one of model, alpaca, chatml, llama-2, raw, not "vicuna".'],
  ])('names the flag in a bad value: %j', (argv, message) => {
    expect(() => parseServeArgs(argv)).toThrow(new UsageError(message));
  });

  it('lists every flag in --help, and every setting reaches the CLI or the Worker', () => {
    for (const s of SETTINGS) {
      expect(s.flag || s.env, s.key).toBeTruthy();
      if (s.flag) expect(SERVE_HELP).toContain(`--${s.flag}`);
    }
  });

  it('reads Worker variables by the same rules', () => {
    expect(settingsFromEnv({ INSTANCE_NUM: '4', CORS: 'a, b', DTYPE: '', UNRELATED: 'x' })).toEqual({ maxConcurrent: 4, cors: ['a', 'b'] });
    expect(() => settingsFromEnv({ PREFILL_CHUNK: '0' })).toThrow('PREFILL_CHUNK must be an integer >= 1, not "0".');
  });
});
