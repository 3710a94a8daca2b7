/**
 * `edgellm client` as users run it: the built CLI in a child process, stdin piped or in a
 * pseudo-terminal (tmux), against a server in this process (real handlers and engine on the fake
 * model, so replies and the server's session state are exact) and against the real `edgellm serve`.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app/create-app.js';
import { createDeferredRuntime } from '../../src/runtime/deferred-runtime.js';
import { serve, type RunningServer } from '../../src/adapters/node/serve.js';
import { makeEngine, wordId, type FakeEngine } from '../fixtures/fake-backend.js';
import { CLI, requireBuild, startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES, TINY_RANDOM } from '../helpers/shared-models.js';

interface TestServer extends FakeEngine {
  url: string;
  /** With `loading`: hands the engine to the server, which until then says it is loading. */
  finishLoading(): void;
  /** Every POST body, in order. */
  bodies: Array<{ path: string; body: any }>;
  /** Every request path, in order. */
  paths: string[];
}

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function startServer(options: { apiKeys?: string[]; delayMs?: number; loading?: boolean } = {}): Promise<TestServer> {
  // kvBytesPerToken turns the engine's KV cache on, so a session's KV stays between turns.
  const fake = makeEngine({ backend: { kvBytesPerToken: 16, contextLength: 256, delayMs: options.delayMs } });
  const deferred = createDeferredRuntime();
  if (!options.loading) deferred.resolve(fake.engine);
  const app = createApp({ runtime: deferred, apiKeys: options.apiKeys, onError: () => {} });
  const bodies: TestServer['bodies'] = [];
  const paths: string[] = [];
  const server = await serve(
    {
      fetch: async (request) => {
        paths.push(new URL(request.url).pathname);
        if (request.method === 'POST') bodies.push({ path: new URL(request.url).pathname, body: await request.clone().json() });
        return app.fetch(request);
      },
    },
    { host: '127.0.0.1', port: 0 },
  );
  servers.push(server);
  return { ...fake, url: server.url, bodies, paths, finishLoading: () => deferred.resolve(fake.engine) };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `edgellm client` with `input` piped to it (asynchronously: the server runs in this process). */
function runClient(args: string[], input: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, 'client', ...args], {
      env: { ...process.env, EDGELLM_API_KEY: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
    proc.stdin.end(input);
  });
}

const sessionFlags = (server: TestServer) =>
  server.bodies.filter((b) => b.path === '/generate').map((b) => [b.body.session_id, b.body.sequence_start, b.body.sequence_end]);
const prompts = (server: TestServer) => server.tokenizer.encoded.map((e) => e.text);
/** What the model had read at each prefill, cached part included, as text. */
const contexts = (server: TestServer) => server.backend.prefilledContexts.map((tokens) => server.tokenizer.decode(tokens));
const GREEDY = ['--params', 'temperature=0', '--max-tokens', '3'];

beforeAll(() => requireBuild());

describe('edgellm client, piped', () => {
  it('holds a /generate session over several turns, /reset starts another, and exit ends it', async () => {
    const server = await startServer();
    const run = await runClient([server.url, ...GREEDY, '--session-id', '5', '--system', 'sys'], 'hello\nworld\n/reset\nred\n');
    expect(run.stderr).toMatch(/new conversation \(\/generate session 5\)/);
    expect(run.code).toBe(0);
    // Only the replies, a blank line between them.
    expect(run.stdout).toBe('one two three\n\none two three\n\none two three\n');
    expect(sessionFlags(server)).toEqual([
      [5, true, false],
      [5, false, false],
      [5, false, true], // /reset ends the old conversation
      [5, true, false],
      [5, false, true], // end of input ends the session
    ]);
    // The server kept the conversation: turn 2 was rendered after turn 1; after /reset it was gone.
    // ("sys" is not in the fake vocabulary.)
    expect(contexts(server)).toContain('system :<unk> user : hello assistant : one two three user : world assistant :');
    expect(contexts(server)).toContain('system :<unk> user : red assistant :');
    // ...and freed it on the way out.
    expect(server.backend.live.size).toBe(0);
  });

  it('keeps the history itself with --chat', async () => {
    const server = await startServer();
    const run = await runClient([server.url, '--chat', ...GREEDY], 'hello\nworld\n');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('one two three\n\none two three\n');
    expect(server.bodies.map((b) => b.path)).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
    expect(server.bodies[1].body.messages).toEqual([
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: ' one two three' },
      { role: 'user', content: 'world' },
    ]);
  });

  it('sends a line ending in a backslash together with the next one', async () => {
    const server = await startServer();
    const run = await runClient([server.url, '--chat', ...GREEDY], 'hello\\\nworld\n');
    expect(run.code).toBe(0);
    expect(server.bodies[0].body.messages).toEqual([{ role: 'user', content: 'hello\nworld' }]);
  });

  it('says clearly when the server is down, and exits 1', async () => {
    const server = await startServer();
    const url = server.url;
    await servers.pop()!.close();
    const run = await runClient([url], 'hello\n');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`edgellm: cannot reach ${url}: is \`edgellm serve\` running? (ECONNREFUSED)\n`);
  });

  it('says how to pass an API key on 401, and works with EDGELLM_API_KEY', async () => {
    const server = await startServer({ apiKeys: ['secret'] });
    const missing = await runClient([server.url], 'hello\n');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      'edgellm: the server answered 401 authentication_error: Missing API key: send Authorization: Bearer <key>. ' +
        '(pass --api-key KEY or set EDGELLM_API_KEY)\n',
    );
    const wrong = await runClient([server.url, '--api-key', 'nope'], 'hello\n');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401 authentication_error: Incorrect API key provided\. \(check --api-key/);
    const right = await runClient([server.url, ...GREEDY], 'hello\n', { EDGELLM_API_KEY: 'secret' });
    expect(right.code).toBe(0);
    expect(right.stdout).toBe('one two three\n');
  });

  it('stops at the first error the server answers, prints it, and still ends the session', async () => {
    const server = await startServer();
    // The model fails on any prompt holding the word "red".
    server.backend.failWhen = (_call, items) => (items.some((i) => i.tokens.includes(wordId('red'))) ? new Error('device lost') : undefined);
    const run = await runClient([server.url, ...GREEDY], 'hello\nred\nnever sent\n');
    expect(run.code).toBe(1);
    // The blank line before the failed reply, then nothing.
    expect(run.stdout).toBe('one two three\n\n');
    expect(run.stderr).toMatch(/^edgellm: the server failed during the reply \(server_error\): The server had an error while generating\.$/m);
    const flags = sessionFlags(server);
    expect(flags.length).toBe(3);
    expect(flags[2].slice(1)).toEqual([false, true]);
    expect(prompts(server).some((p) => p.includes('never'))).toBe(false);
  });

  it('on SIGINT stops the reply, ends the session and exits 130', async () => {
    const server = await startServer({ delayMs: 100 });
    const proc = spawn(process.execPath, [CLI, 'client', server.url, ...GREEDY], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    // stdin stays open: the client is waiting on the long second reply when the signal comes.
    proc.stdin.write('hello\n/params max_tokens=19\nred\n');
    const deadline = Date.now() + 20_000;
    while (!stdout.includes('one two three\n\none') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    proc.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stdout).not.toMatch(/nineteen/);
    const flags = sessionFlags(server);
    expect(flags[flags.length - 1].slice(1)).toEqual([false, true]);
    expect(server.backend.live.size).toBe(0);
  });

  it('refuses a bad /params line with the allowed range and exits 1', async () => {
    const server = await startServer();
    const run = await runClient([server.url], '/params top_p=3\nhello\n');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("edgellm: top_p must be a number from 0 to 1 (got '3') (nothing changed)\n");
    expect(server.bodies).toEqual([]);
  });

  it('waits for a server that is still loading its model', async () => {
    const server = await startServer({ loading: true });
    const run = runClient([server.url, ...GREEDY], 'hello\n');
    // Finish only after the client has seen the loading server twice (it polls), however slow its start.
    await expect.poll(() => server.paths.filter((p) => p === '/health').length, { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    server.finishLoading();
    const { code, stdout, stderr } = await run;
    expect(stderr).toMatch(/^edgellm: the server is still loading its model; waiting\.\.\.$/m);
    expect(code).toBe(0);
    expect(stdout).toBe('one two three\n');
  });

  it('names the models when --model is not served', async () => {
    const server = await startServer();
    const run = await runClient([server.url, '--model', 'gpt-4'], 'hello\n');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`edgellm: the server at ${server.url} does not serve 'gpt-4' (it serves fake-model)\n`);
  });

  it('prints its help and refuses bad flags with status 2', async () => {
    const help = await runClient(['--help'], '');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: edgellm client \[url\]/);
    const bad = await runClient(['--max-tokens', 'many'], '');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/max_tokens must be an integer >= 1 \(got 'many'\)\nRun 'edgellm client --help'/);
  });
});

// tiny-random is an onnxruntime-genai export: turn 2 extends the cache by several tokens, which
// its graph can only take one token per run (the step plan found at load); its text is gibberish.
describe.each([
  { name: STORIES, words: /[a-z]{2,}/i },
  { name: TINY_RANDOM, words: /\S/ },
])('edgellm client against edgellm serve ($name)', ({ name, words }) => {
  const dir = sharedModel(name);
  let cli: CliServer;
  beforeAll(async () => {
    if (dir) cli = await startCli([dir]);
  });
  afterAll(async () => {
    await cli?.stop();
  });

  it.skipIf(!dir).each([[[]], [['--chat']]])('holds a two-turn conversation with piped input %j', async (mode) => {
    // Greedy, so the replies (and whether one holds a blank line) do not change between runs.
    const run = await runClient([cli.url, ...mode, '--params', 'temperature=0', '--max-tokens', '24'], 'Once upon a time\nThen the dog\n');
    expect(run.code).toBe(0);
    const replies = run.stdout.split('\n\n');
    expect(replies).toHaveLength(2);
    for (const reply of replies) expect(reply.trim()).toMatch(words);
  });
});

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
if (!hasTmux) console.warn('[edgellm tests] skipping the pseudo-terminal client tests: tmux is not installed');

describe.skipIf(!hasTmux)('edgellm client in a terminal (tmux)', () => {
  const exec = promisify(execFile);
  const socket = join(tmpdir(), `edgellm-client-test-${process.pid}.tmux`);
  const tmux = (...args: string[]) => exec('tmux', ['-S', socket, ...args]);
  let session = 0;

  afterAll(async () => {
    await tmux('kill-server').catch(() => {});
    rmSync(socket, { force: true });
  });

  /** Starts the client in a fresh tmux window; the shell prints EXITED=<status> when it quits. */
  async function open(args: string[]): Promise<string> {
    const name = `c${session++}`;
    const command = `EDGELLM_API_KEY= NO_COLOR=1 '${process.execPath}' '${CLI}' client ${args.join(' ')}; echo EXITED=$?; sleep 60`;
    await tmux('new-session', '-d', '-s', name, '-x', '150', '-y', '50', command);
    return name;
  }

  const pane = async (name: string) => (await tmux('capture-pane', '-p', '-J', '-S', '-', '-t', name)).stdout;

  async function waitFor(name: string, check: (text: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await pane(name);
      if (check(text)) return text;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the pane shows:\n${text}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const count = (text: string, needle: string) => text.split(needle).length - 1;
  const keys = (name: string, ...k: string[]) => tmux('send-keys', '-t', name, ...k);

  it('holds a two-turn conversation with /params, stops a reply on Ctrl-C, and quits on /exit', async () => {
    const server = await startServer({ delayMs: 30 });
    const name = await open([server.url, '--params', 'temperature=0', '--max-tokens', '3', '--session-id', '77']);
    await waitFor(name, (t) => t.includes('/help for commands'), 'the banner');

    await keys(name, 'hello', 'Enter');
    await waitFor(name, (t) => count(t, 'one two three') === 1 && t.trimEnd().endsWith('>'), 'the first reply');
    await keys(name, 'world', 'Enter');
    let text = await waitFor(name, (t) => count(t, 'one two three') === 2 && t.trimEnd().endsWith('>'), 'the second reply');
    expect(text).toMatch(/> hello\none two three\n\[stopped at max_tokens=3\]\n/);
    expect(text).toMatch(/> world\none two three\n/);
    // The second turn continued the server's session.
    expect(contexts(server)).toContain('user : hello assistant : one two three user : world assistant :');

    await keys(name, '/params top_k=5 max_tokens=19', 'Enter');
    await waitFor(name, (t) => t.includes('[params: temperature=0 top_k=5 max_tokens=19]'), 'the /params answer');
    await keys(name, '/params top_k=lots', 'Enter');
    await waitFor(name, (t) => t.includes("error: top_k must be an integer >= -1 (got 'lots') (nothing changed)"), 'the /params error');

    // A long reply, stopped with Ctrl-C: the client stays, and the server cancels the generation.
    server.backend.delayMs = 200;
    await keys(name, 'red', 'Enter');
    await waitFor(name, (t) => t.includes('one two three four'), 'the long reply to start');
    await keys(name, 'C-c');
    text = await waitFor(name, (t) => t.includes('[interrupted]') && t.trimEnd().endsWith('>'), 'the interruption');
    expect(text).not.toMatch(/nineteen/);
    server.backend.delayMs = 30;
    // A server error is shown, and the conversation goes on.
    server.backend.failWhen = (_call, items) => (items.some((i) => i.tokens.includes(wordId('green'))) ? new Error('device lost') : undefined);
    await keys(name, 'green', 'Enter');
    await waitFor(name, (t) => t.includes('error: the server failed during the reply (server_error)'), 'the server error');
    await keys(name, '/params max_tokens=2', 'Enter');
    await keys(name, 'blue', 'Enter');
    await waitFor(name, (t) => /> blue\none two\n/.test(t), 'a reply after the interruption');

    await keys(name, '/exit', 'Enter');
    await waitFor(name, (t) => t.includes('EXITED=0'), 'the exit');
    const flags = sessionFlags(server);
    expect(flags[flags.length - 1]).toEqual([77, false, true]);
    expect(server.backend.live.size).toBe(0);
  });

  it('quits on Ctrl-C at an empty prompt (a typed line is only cleared), and on Ctrl-D, ending the session', async () => {
    const server = await startServer();
    for (const quit of ['C-c', 'C-d']) {
      const name = await open([server.url, '--params', 'temperature=0', '--max-tokens', '2']);
      await waitFor(name, (t) => t.includes('/help for commands'), 'the banner');
      await keys(name, 'hello', 'Enter');
      await waitFor(name, (t) => t.includes('one two') && t.trimEnd().endsWith('>'), 'the reply');
      // Ctrl-C on a half-typed line only clears it.
      await keys(name, 'blue red');
      await waitFor(name, (t) => t.trimEnd().endsWith('> blue red'), 'the typed text');
      await keys(name, 'C-c');
      await waitFor(name, (t) => t.trimEnd().endsWith('>'), 'the cleared line');
      await keys(name, quit);
      expect(prompts(server).some((p) => p.includes('blue'))).toBe(false);
      await waitFor(name, (t) => t.includes('EXITED=0'), `the exit on ${quit}`);
      const flags = sessionFlags(server);
      expect(flags[flags.length - 1].slice(1)).toEqual([false, true]);
    }
    expect(server.backend.live.size).toBe(0);
  });

  it('keeps what is typed while a reply streams for the next prompt, and sends pasted lines one by one', async () => {
    const server = await startServer({ delayMs: 100 });
    const name = await open([server.url, '--params', 'temperature=0', '--max-tokens', '6']);
    await waitFor(name, (t) => t.includes('/help for commands'), 'the banner');
    await keys(name, 'hello', 'Enter');
    await waitFor(name, (t) => t.includes('> hello\none'), 'the reply to start');
    await keys(name, 'red');
    await waitFor(name, (t) => t.includes('one two three four five six') && t.trimEnd().endsWith('> red'), 'the typed text at the prompt');
    await keys(name, 'Enter');
    await waitFor(name, (t) => t.split('one two three four five six').length === 3, 'the second reply');
    expect(contexts(server)).toContain('user : hello assistant : one two three four five six user : red assistant :');

    // Pasted lines arrive in one read; each is a message, in order.
    await tmux('set-buffer', '-b', 'paste', '/params max_tokens=2\nblue\ngreen\n');
    await tmux('paste-buffer', '-b', 'paste', '-t', name);
    await waitFor(name, (t) => /> green\none two\n/.test(t) && t.trimEnd().endsWith('>'), 'the replies to the pasted lines');
    const generated = server.bodies.filter((b) => b.path === '/generate').map((b) => b.body.prompt);
    expect(generated.slice(-2)).toEqual(['blue', 'green']);
    await keys(name, '/exit', 'Enter');
    await waitFor(name, (t) => t.includes('EXITED=0'), 'the exit');
  });
});
