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
    expect(parseServeArgs(['m']).runtime.threadSleep).toBe(false);
    expect(parseServeArgs(['m', '--thread-sleep']).runtime.threadSleep).toBe(true);
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

describe('--lora-modules (vLLM syntax)', () => {
  it('takes NAME=PATH values after the flag, repeated flags, the = form and underscores; the model may come before or after', () => {
    const modules = (argv: string[]) => parseServeArgs(argv).runtime;
    expect(modules(['m.gguf', '--lora-modules', 'sql=./a', 'poem=/b/c.gguf', '--port', '0'])).toMatchObject({
      model: 'm.gguf', loraModules: [{ name: 'sql', path: './a' }, { name: 'poem', path: '/b/c.gguf' }],
    });
    expect(modules(['--lora_modules', 'a=x', 'm.gguf']).loraModules).toEqual([{ name: 'a', path: 'x' }]);
    expect(modules(['--lora_modules', 'a=x', 'm.gguf']).model).toBe('m.gguf');
    expect(modules(['m', '--lora-modules=a=x=y', '--lora-modules', 'b=z']).loraModules).toEqual([{ name: 'a', path: 'x=y' }, { name: 'b', path: 'z' }]);
    expect(modules(['m']).loraModules).toBeUndefined();
  });

  it.each([
    [['m', '--lora-modules', 'sql'], /--lora-modules sql: expected NAME=PATH/],
    [['m', '--lora-modules', '=./a'], /--lora-modules =\.\/a: expected NAME=PATH/],
    [['m', '--lora-modules', 'sql='], /--lora-modules sql=: expected NAME=PATH/],
    [['m', '--lora-modules', 'a b=x'], /the name "a b" may only hold/],
    [['m', '--lora-modules', 'a=x', 'a=y'], /--lora-modules: the name "a" is given twice/],
    [['m', '--lora-modules'], /--lora-modules/],
  ])('a bad value is a usage error naming it: %j', (argv, message) => {
    expect(() => parseServeArgs(argv)).toThrow(UsageError);
    expect(() => parseServeArgs(argv)).toThrow(message);
  });
});
