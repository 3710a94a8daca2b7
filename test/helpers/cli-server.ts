/**
 * Starts the real `edgellm serve` CLI (the built bundle) on a free loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = `${ROOT}bin/edgellm.js`;

export interface CliServer {
  url: string;
  proc: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function requireBuild(): void {
  if (!existsSync(`${ROOT}dist/cli.js`)) throw new Error('dist/ is missing: run `npm run build` (npm test does it).');
}

/** `env` is added to this process's environment (e.g. EDGELLM_SINGLE_THREADED_GC=0: no relaunched child to kill). */
export async function startCli(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<CliServer> {
  requireBuild();
  const proc = spawn(process.execPath, [CLI, 'serve', ...args, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${output}`)), timeoutMs);
    const check = () => {
      const match = /serving .* at (http:\/\/[^\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    proc.stderr!.on('data', check);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before serving:\n${output}`));
    });
  });
  return {
    url,
    proc,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion (for argument errors). */
export function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  requireBuild();
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d) => (output += d));
    proc.stderr.on('data', (d) => (output += d));
    proc.on('exit', (code) => resolve({ code, output }));
  });
}

/** Reads an SSE body into its JSON events (without the final [DONE]). */
export async function readSse(response: Response): Promise<{ events: any[]; done: boolean }> {
  const text = await response.text();
  const data = text.split('\n\n').filter(Boolean).map((block) => block.replace(/^data: /, ''));
  const done = data[data.length - 1] === '[DONE]';
  return { events: data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)), done };
}
