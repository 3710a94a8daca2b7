/** Runs one of examples/clients/ the way a user would, pointed at a test server. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Runs `examples/clients/<name>` with EDGELLM_URL set; resolves its stdout, rejects with its output on failure. */
export function runExample(name: string, url: string, command = process.execPath): Promise<string> {
  const file = fileURLToPath(new URL(`../../examples/clients/${name}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const proc = spawn(command, [file], { env: { ...process.env, EDGELLM_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${file} exited ${code}:\n${stdout}\n${stderr}`))));
  });
}
