import { describe, expect, it } from 'vitest';
import { UsageError } from '../cli-args.js';
import { DEFAULT_URL, parseClientArgs } from './client-args.js';

describe('parseClientArgs', () => {
  it('defaults to a /generate session on the local server', () => {
    expect(parseClientArgs([])).toEqual({ help: false, url: DEFAULT_URL, chat: false, params: {} });
  });

  it('reads every flag, with _ or -', () => {
    const args = parseClientArgs([
      'http://10.0.0.2:8000', '--model', 'm', '--api_key', 'k', '--session-id', '42', '--system', 'be brief',
      '--max_tokens', '64', '--params', 'temperature=0.7 top_k=40', '--params', 'seed=1',
    ]);
    expect(args).toEqual({
      help: false,
      url: 'http://10.0.0.2:8000',
      chat: false,
      model: 'm',
      apiKey: 'k',
      sessionId: 42,
      system: 'be brief',
      params: { temperature: 0.7, top_k: 40, seed: 1, max_tokens: 64 },
    });
    expect(parseClientArgs(['--chat']).chat).toBe(true);
  });

  it('takes the API key from EDGELLM_API_KEY unless --api-key is given', () => {
    expect(parseClientArgs([], { EDGELLM_API_KEY: 'from-env' }).apiKey).toBe('from-env');
    expect(parseClientArgs(['--api-key', 'flag'], { EDGELLM_API_KEY: 'from-env' }).apiKey).toBe('flag');
    expect(parseClientArgs([], { EDGELLM_API_KEY: '' }).apiKey).toBeUndefined();
  });

  it.each([
    [['a', 'b'], /expected one server URL, got: a b/],
    [['--max-tokens', '0'], /max_tokens must be an integer >= 1/],
    [['--params', 'temperature=hot'], /temperature must be a number from 0 to 2/],
    [['--session-id=-3'], /--session-id must be a non-negative integer \(got '-3'\)/],
    [['--session-id', '3', '--chat'], /--chat keeps no session/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
  ])('rejects %j', (argv, message) => {
    const error = (() => {
      try {
        parseClientArgs(argv);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });
});
