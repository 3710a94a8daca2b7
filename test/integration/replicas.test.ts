/**
 * examples/replicas/edgellm.conf for real: nginx (consistent hashing on X-Session-Id) in front of three
 * `edgellm serve` processes on stories260K. 50 multi-turn /generate sessions and 200 chat requests run
 * at once; one replica is killed (SIGKILL) mid-run. Checked: no turn silently loses its history (each
 * succeeds with the whole conversation or is refused with session_not_found and restarted by the
 * client), sessions on the surviving replicas stay there and keep reusing their KV, and each
 * survivor's /metrics adds up to what its responses said.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliServer } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/replicas/edgellm.conf', import.meta.url));
const SESSIONS = 50;
const TURNS = 4;
const CHATS = 200;
const KILL_AFTER_TURNS = 60;

function findNginx(): string | undefined {
  for (const candidate of ['nginx', '/usr/sbin/nginx']) {
    if (spawnSync(candidate, ['-v'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  console.warn('[edgellm tests] skipping the replicas test: nginx not found (Debian: apt-get install nginx-light; .ci/run installs it)');
  return undefined;
}

const dir = sharedModel(STORIES);
const nginx = dir ? findNginx() : undefined;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The example's upstream block and listen port, pointed at this test's processes. */
function renderConfig(work: string, ports: number[], listen: number): string {
  const example = readFileSync(EXAMPLE, 'utf8');
  const servers = example.match(/^ *server 127\.0\.0\.1:\d+ .*$/gm)!;
  expect(servers).toHaveLength(3);
  let site = example.replace(/listen 8080;/, `listen 127.0.0.1:${listen};`);
  servers.forEach((line, i) => (site = site.replace(line, line.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${ports[i]}`))));
  writeFileSync(join(work, 'edgellm.conf'), site);
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${work}/nginx.pid;`,
    'error_log stderr crit;',
    'events {}',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${work}/${kind};`),
    `  include ${work}/edgellm.conf;`,
    '}',
  ].join('\n');
}

interface Answer {
  status: number;
  /** host:port of the replica that answered (the last one nginx tried); '' when nginx answered itself. */
  upstream: string;
  json: any;
}

interface Turn extends Answer {
  /** The turn had to start the session again (the server said session_not_found). */
  restarted: boolean;
}

type Message = { role: 'user' | 'assistant'; content: string };

describe.skipIf(!dir || !nginx)('three replicas behind nginx (examples/replicas/edgellm.conf)', () => {
  const replicas: CliServer[] = [];
  let proxy: ChildProcess | undefined;
  let proxyOutput = '';
  let base = '';
  let work = '';

  beforeAll(async () => {
    // EDGELLM_SINGLE_THREADED_GC=0: the server is this process itself, so SIGKILL kills it outright.
    const args = [dir!, '--dtype', 'fp32', '--instance-num', '16'];
    replicas.push(...(await Promise.all([0, 1, 2].map(() => startCli(args, 60_000, { EDGELLM_SINGLE_THREADED_GC: '0' })))));
    work = mkdtempSync(join(tmpdir(), 'edgellm-nginx-'));
    const listen = await freePort();
    writeFileSync(join(work, 'nginx.conf'), renderConfig(work, replicas.map((r) => Number(new URL(r.url).port)), listen));
    proxy = spawn(nginx!, ['-p', work, '-c', join(work, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proxy.stdout!.on('data', (d) => (proxyOutput += d));
    proxy.stderr!.on('data', (d) => (proxyOutput += d));
    base = `http://127.0.0.1:${listen}`;
    for (let tries = 0; ; tries++) {
      const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (tries > 100 || proxy.exitCode !== null) throw new Error(`nginx did not start:\n${proxyOutput}`);
      await sleep(50);
    }
  });

  afterAll(async () => {
    if (proxy && proxy.exitCode === null) {
      const exited = new Promise((resolve) => proxy!.once('exit', resolve));
      proxy.kill('SIGTERM');
      await exited;
    }
    await Promise.all(replicas.map((r) => r.stop()));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function send(path: string, body: unknown, sessionId?: number): Promise<Answer> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (sessionId !== undefined) headers['x-session-id'] = String(sessionId);
    try {
      const response = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      const upstream = (response.headers.get('x-upstream') ?? '').split(', ').at(-1)!;
      const text = await response.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        // nginx's own error pages are HTML
      }
      return { status: response.status, upstream, json };
    } catch {
      return { status: 0, upstream: '', json: null }; // the connection broke (the replica died mid-answer)
    }
  }

  it('keeps every session on its replica or restarts it clearly when its replica dies; the metrics add up', async () => {
    const answers: Answer[] = []; // every answer a replica gave, for the metrics
    let completedTurns = 0;
    let killed = '';
    const killedUrl = new URL(replicas[0].url);
    const kill = (async () => {
      while (completedTurns < KILL_AFTER_TURNS) await sleep(10);
      killed = killedUrl.host;
      replicas[0].proc.kill('SIGKILL');
    })();

    const params = { request_output_len: 6, temperature: 0 };
    const prompts = ['Once upon a time', 'The little dog', 'Lily went to the park', 'One day, Tom', 'The sun was hot'];

    async function runSession(id: number): Promise<Turn[]> {
      const turns: Turn[] = [];
      const transcript: Message[] = [];
      let started = false;
      for (let t = 0; t < TURNS; t++) {
        const prompt = prompts[(id + t) % prompts.length];
        let restarted = false;
        for (let attempt = 0; ; attempt++) {
          if (attempt > 100) throw new Error(`session ${id} turn ${t}: no answer after 100 tries`);
          // A continuing turn sends only its text; a (re)start sends the whole conversation so far.
          const body = started
            ? { ...params, prompt, session_id: id, sequence_start: false }
            : { ...params, prompt: [...transcript, { role: 'user', content: prompt }], session_id: id, sequence_start: true };
          const answer = await send('/generate', body, id);
          if (answer.upstream) answers.push(answer);
          if (answer.status === 200) {
            turns.push({ ...answer, restarted });
            transcript.push({ role: 'user', content: prompt }, { role: 'assistant', content: answer.json.text });
            started = true;
            completedTurns++;
            break;
          }
          if (answer.status === 404) {
            expect(answer.json.error).toMatchObject({ code: 'session_not_found', param: 'session_id', type: 'not_found_error' });
            expect(t).toBeGreaterThan(0); // only a session that was started can be unknown
            started = false;
            restarted = true;
            continue;
          }
          if (answer.status === 409) {
            expect(answer.json.error.code).toBe('session_busy'); // the previous turn is still being released
            await sleep(10);
            continue;
          }
          // The replica died during this request (nginx answers 502, or the connection breaks): try again.
          expect([0, 502, 504], `unexpected answer ${answer.status} ${JSON.stringify(answer.json)}`).toContain(answer.status);
          await sleep(20);
        }
      }
      return turns;
    }

    const chats: Answer[] = [];
    let nextChat = 0;
    async function chatWorker(): Promise<void> {
      while (nextChat < CHATS) {
        const i = nextChat++;
        const body = { messages: [{ role: 'user', content: prompts[i % prompts.length] }], max_tokens: 6, temperature: 0 };
        for (let attempt = 0; ; attempt++) {
          const answer = await send('/v1/chat/completions', body);
          if (answer.upstream) answers.push(answer);
          if (answer.status === 200) {
            chats.push(answer);
            break;
          }
          expect([0, 502, 504], `unexpected chat answer ${answer.status} ${JSON.stringify(answer.json)}`).toContain(answer.status);
          if (attempt > 20) throw new Error('chat request failed 20 times');
          await sleep(20);
        }
      }
    }

    const [sessions] = await Promise.all([
      Promise.all(Array.from({ length: SESSIONS }, (_, i) => runSession(i + 1))),
      Promise.all(Array.from({ length: 8 }, () => chatWorker())),
    ]);
    await kill;
    expect(killed).not.toBe('');

    // 1. No session silently lost its history: every turn saw more tokens than the one before
    //    (its prompt holds the whole conversation), whether it continued or restarted.
    for (const turns of sessions) {
      expect(turns).toHaveLength(TURNS);
      for (let t = 1; t < TURNS; t++) expect(turns[t].json.input_tokens).toBeGreaterThan(turns[t - 1].json.input_tokens);
    }

    // 2. Sessions that lived on a survivor stayed there and reused their KV on every turn.
    const onSurvivor = sessions.filter((turns) => turns[0].upstream !== killed);
    expect(onSurvivor.length).toBeGreaterThan(SESSIONS / 2);
    for (const turns of onSurvivor) {
      expect(turns.every((t) => t.upstream === turns[0].upstream && !t.restarted)).toBe(true);
      for (const turn of turns.slice(1)) expect(turn.json.history_tokens).toBeGreaterThan(0);
    }

    // 3. Sessions of the killed replica that went on afterwards were restarted (once) on one survivor,
    //    and kept their KV there from then on.
    const moved = sessions.filter((turns) => turns.some((t) => t.upstream !== turns[0].upstream));
    expect(moved.length).toBeGreaterThan(0);
    for (const turns of moved) {
      expect(turns[0].upstream).toBe(killed);
      const first = turns.findIndex((t) => t.upstream !== killed);
      expect(turns[first].restarted).toBe(true);
      expect(turns.filter((t) => t.restarted)).toHaveLength(1);
      expect(new Set(turns.slice(first).map((t) => t.upstream)).size).toBe(1);
      for (const turn of turns.slice(first + 1)) expect(turn.json.history_tokens).toBeGreaterThan(0);
    }

    // 4. Each survivor's /metrics adds up to what its answers said.
    expect(chats).toHaveLength(CHATS);
    const survivors = replicas.slice(1);
    for (const replica of survivors) {
      const host = new URL(replica.url).host;
      const mine = answers.filter((a) => a.upstream === host);
      const ok = (route: string) => mine.filter((a) => a.status === 200 && (route === '/generate' ? 'text' in a.json : 'choices' in a.json));
      const generated = ok('/generate');
      const chatted = ok('/v1/chat/completions');
      expect(generated.length + chatted.length).toBeGreaterThan(0);
      const families = parsePrometheusTextFormat(await (await fetch(`${replica.url}/metrics`)).text());
      const value = (name: string, labels: Record<string, string> = {}) =>
        Number(
          families
            .find((f) => f.name === name)
            ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0,
        );
      const sum = (list: Answer[], pick: (json: any) => number) => list.reduce((n, a) => n + pick(a.json), 0);
      expect(value('edgellm:http_requests_total', { route: '/generate', status: '200' })).toBe(generated.length);
      expect(value('edgellm:http_requests_total', { route: '/generate', status: '404' })).toBe(mine.filter((a) => a.status === 404).length);
      expect(value('edgellm:http_requests_total', { route: '/v1/chat/completions', status: '200' })).toBe(chatted.length);
      expect(value('edgellm:prompt_tokens_total')).toBe(sum(generated, (j) => j.input_tokens) + sum(chatted, (j) => j.usage.prompt_tokens));
      expect(value('edgellm:generation_tokens_total')).toBe(sum(generated, (j) => j.tokens) + sum(chatted, (j) => j.usage.completion_tokens));
      expect(value('edgellm:prefix_cache_hits_total')).toBe(
        sum(generated, (j) => j.history_tokens) + sum(chatted, (j) => j.usage.prompt_tokens_details.cached_tokens),
      );
      expect(value('edgellm:request_success_total', { finished_reason: 'length' }) + value('edgellm:request_success_total', { finished_reason: 'stop' })).toBe(
        generated.length + chatted.length,
      );
      expect(value('edgellm:num_requests_running')).toBe(0);
      const heldHere = sessions.filter((turns) => turns.at(-1)!.upstream === host).length;
      expect(value('edgellm:sessions_open')).toBe(heldHere);
      expect(value('edgellm:kv_cache_bytes')).toBeGreaterThan(0);
    }
  }, 120_000);
});
