/**
 * Start-up refusals that keep a careless command line from serving something unsafe.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-server.js';

describe('edgellm serve refuses', () => {
  it('an empty --api-keys (an unset variable), instead of serving without authentication', async () => {
    for (const keys of ['', ' , ']) {
      const { code, output } = await runCli(['serve', './no-such-model', '--api-keys', keys]);
      expect(code).toBe(2);
      expect(output).toContain('--api-keys is empty');
    }
  });

  it('a negative --request-timeout', async () => {
    const { code, output } = await runCli(['serve', './no-such-model', '--request-timeout=-1']);
    expect(code).toBe(2);
    expect(output).toContain('--request-timeout must be a number of seconds >= 0');
  });
});
