/**
 * bin/edgellm.js runs `serve` in a child node with --single-threaded-gc: the child has the flag,
 * signals reach it through the launcher, and killing the launcher outright stops the server too.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';
import { until } from '../helpers/until.js';

const dir = sharedModel(STORIES);

/** The processes whose parent is `pid`, with their command lines (Linux /proc). */
function children(pid: number): Array<{ pid: number; argv: string[] }> {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== pid) return [];
        return [{ pid: Number(name), argv: readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean) }];
      } catch {
        return []; // gone meanwhile
      }
    });
}

describe.skipIf(!dir || process.platform !== 'linux')('the edgellm launcher (bin/edgellm.js)', () => {
  it('serves from a child node with --single-threaded-gc; SIGTERM to the launcher stops it gracefully', async () => {
    const server = await startCli([dir!]);
    const [child] = children(server.proc.pid!);
    expect(child.argv).toContain('--single-threaded-gc');
    expect(child.argv.some((a) => a.endsWith('dist/cli.js'))).toBe(true);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);

    expect(await server.stop('SIGTERM')).toBe(0);
    expect(server.output()).toMatch(/SIGTERM received, finishing in-flight requests/);
    expect(existsSync(`/proc/${child.pid}`)).toBe(false);
  });

  it('stops the server when the launcher is killed outright', async () => {
    const server = await startCli([dir!]);
    const [child] = children(server.proc.pid!);
    server.proc.kill('SIGKILL');
    await until(() => !existsSync(`/proc/${child.pid}`), 15_000);
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });
});
