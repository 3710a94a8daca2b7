// Where edgellm's resident memory goes on the race's workload, one server at a time or A/B interleaved:
//   node bench/memory.mjs --model <x.gguf | ONNX folder> [--threads 1] [--rounds 2] [--variant NAME:ENV=V,ENV=V]...
// Each variant is an `edgellm serve` (started as the race starts it: --single-threaded-gc, --instance-num 8,
// --cache-max-bytes 0 unless --server-arg says otherwise) with its own environment. Per variant it reads
// /proc/<pid>/status (VmRSS, VmHWM) after the load and after each phase of the race's edgellm work: a stream
// of --max-tokens after a 32- and a 512-token prompt, a 1,000-token prefill, 1 and 8 streams of
// --stream-tokens; a sampler (every 10 ms) gives each phase's own peak; /proc/<pid>/smaps_rollup at the end
// splits anonymous from file-backed pages. With several variants the rounds interleave (the order alternates),
// so their decode tok/s, TTFT and prefill tok/s compare as A/B. `--fresh-checks` gives every server an empty
// EDGELLM_CACHE/load-checks (a first start: rewrites and probes run); by default the servers use
// --cache-dir (default a folder of this run, first start) so run it twice to measure a second start.
// Prints a JSON summary on stdout; progress on stderr.
import { existsSync, mkdirSync, readFileSync, rmSync, cpSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { streamCompletion } from './lib/http.mjs';
import { PromptMaker } from './lib/prompts.mjs';
import { median } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const log = (...m) => console.error(`[memory ${new Date().toISOString().slice(11, 19)}]`, ...m);

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' }, threads: { type: 'string' }, rounds: { type: 'string' }, 'max-tokens': { type: 'string' },
    'stream-tokens': { type: 'string' }, variant: { type: 'string', multiple: true }, 'server-arg': { type: 'string', multiple: true },
    'cache-dir': { type: 'string' }, dist: { type: 'string' }, 'server-log': { type: 'string' }, 'fresh-checks': { type: 'boolean' }, sequential: { type: 'boolean' },
  },
});
const model = resolve(a.model ?? join(ROOT, '..', 'shared', 'models', 'SmolLM2-135M-Instruct', 'SmolLM2-135M-Instruct.Q4_1.gguf'));
const threads = Number(a.threads ?? 1);
const rounds = Number(a.rounds ?? 2);
const maxTokens = Number(a['max-tokens'] ?? 128);
const streamTokens = Number(a['stream-tokens'] ?? 64);
const cacheDir = resolve(a['cache-dir'] ?? join(os.tmpdir(), `edgellm-memory-${process.pid}`));
const variants = (a.variant ?? ['default:']).map((v) => {
  const [name, env = ''] = v.split(/:(.*)/s);
  return { name, env: Object.fromEntries(env.split(',').filter(Boolean).map((kv) => kv.split(/=(.*)/s).slice(0, 2))) };
});

const status = (pid) => {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
};
const rollup = (pid) => {
  const out = {};
  for (const line of readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n').slice(1)) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * 1024;
  }
  return out;
};
const MB = (b) => Math.round(b / 1e6);
// A copy of dist/ inside the repository (its node_modules resolve): a rebuild during the run does not matter.
const snap = join(HERE, `.snapshot-memory-${process.pid}`);

async function start(variant) {
  if (!existsSync(snap)) {
    cpSync(resolve(a.dist ?? join(ROOT, 'dist')), snap, { recursive: true, filter: (s) => !/\.(map|d\.ts|d\.cts)$/.test(s) });
    process.on('exit', () => rmSync(snap, { recursive: true, force: true }));
  }
  const cache = a['fresh-checks'] ? join(cacheDir, `cache-${variant.name}-${Date.now()}`) : cacheDir;
  if (a['fresh-checks']) {
    // the GGUF conversion is not what is measured: share it, but not the load checks' verdicts
    mkdirSync(cache, { recursive: true });
    if (existsSync(join(cacheDir, 'gguf'))) cpSync(join(cacheDir, 'gguf'), join(cache, 'gguf'), { recursive: true });
  }
  const args = ['--single-threaded-gc', join(snap, 'cli.js'), 'serve', model, '--threads', String(threads), '--instance-num', '8',
    '--cache-max-bytes', '0', ...(a['server-arg'] ?? []), '--host', '127.0.0.1', '--port', '0'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, EDGELLM_CACHE: cache, ...variant.env } });
  let stderr = '';
  const marks = [];
  const peak = { rss: 0 };
  const timer = setInterval(() => {
    try {
      peak.rss = Math.max(peak.rss, status(child.pid).rss);
    } catch { /* exited */ }
  }, 10);
  const started = performance.now();
  const url = await new Promise((ok, fail) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      marks.push(String(d));
      const m = /edgellm: serving .* at (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) ok(m[1]);
    });
    child.once('exit', (code) => fail(new Error(`server exited ${code}:\n${stderr}`)));
  });
  const loadMs = performance.now() - started;
  const checks = /load checks: ([^\n]*)/.exec(stderr)?.[1] ?? '';
  return { ...variant, child, url, peak, timer, loadMs, checks, marks, stderr: () => stderr, phases: [], after: {}, samples: {} };
}

/** Runs `fn` against server `s`, recording its memory after, and the peak RSS while it ran. */
async function phase(s, name, fn) {
  s.peak.rss = status(s.child.pid).rss;
  const result = await fn();
  const st = status(s.child.pid);
  const prev = s.after[name];
  s.after[name] = { rss: Math.max(prev?.rss ?? 0, st.rss), peak: Math.max(prev?.peak ?? 0, s.peak.rss, st.rss), hwm: st.hwm };
  s.marks.push(`--- ${name}: RSS ${MB(st.rss)} MB, phase peak ${MB(s.peak.rss)} MB\n`);
  return result;
}

const pm = await PromptMaker.create(model.endsWith('.gguf') ? dirname(model) : model);
mkdirSync(cacheDir, { recursive: true });
const servers = [];
const push = (s, k, v) => (s.samples[k] ??= []).push(v);
try {
  for (const v of variants) {
    const s = await start(v);
    const st = status(s.child.pid);
    s.load = { ms: Math.round(s.loadMs), rss: st.rss, hwm: st.hwm, anon: st.anon, file: st.file };
    log(`${v.name}: ready in ${(s.loadMs / 1000).toFixed(1)} s, RSS ${MB(st.rss)} MB, peak ${MB(st.hwm)} MB (${s.checks.slice(0, 60)})`);
    servers.push(s);
    if (a.sequential) break;
  }
  const runRounds = async (list) => {
    for (const s of list) await phase(s, 'warm-up', () => streamCompletion(s.url, { prompt: pm.exact(32), maxTokens: 8 }));
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...list].reverse() : list;
      for (const p of [32, 512]) {
        const text = pm.exact(p);
        for (const s of order) {
          const x = await phase(s, `stream p${p}`, () => streamCompletion(s.url, { prompt: text, maxTokens }));
          push(s, `decode tok/s p${p}`, x.decodeTokS);
          push(s, `TTFT ms p${p}`, x.ttftMs);
        }
      }
      const long = pm.exact(1000);
      for (const s of order) {
        const x = await phase(s, 'prefill 1000', () => streamCompletion(s.url, { prompt: long, maxTokens: 1 }));
        push(s, 'prefill tok/s', (x.promptTokens * 1000) / x.ttftMs);
      }
      for (const n of [1, 8]) {
        const texts = Array.from({ length: n }, () => pm.exact(32));
        for (const s of order) {
          const t0 = performance.now();
          const xs = await phase(s, `streams ${n}`, () => Promise.all(texts.map((prompt) => streamCompletion(s.url, { prompt, maxTokens: streamTokens }))));
          push(s, `aggregate tok/s ${n}`, (xs.reduce((t, x) => t + x.tokens, 0) * 1000) / (performance.now() - t0));
        }
      }
      log(`round ${round + 1}/${rounds} done`);
    }
  };
  if (a.sequential) {
    // one server alive at a time: the next variant starts after the previous one stopped
    for (let i = 0; i < variants.length; i++) {
      if (i > 0) {
        const s = await start(variants[i]);
        const st = status(s.child.pid);
        s.load = { ms: Math.round(s.loadMs), rss: st.rss, hwm: st.hwm, anon: st.anon, file: st.file };
        log(`${s.name}: ready in ${(s.loadMs / 1000).toFixed(1)} s, RSS ${MB(st.rss)} MB, peak ${MB(st.hwm)} MB`);
        servers.push(s);
      }
      await runRounds([servers[i]]);
      finish(servers[i]);
    }
  } else {
    await runRounds(servers);
    servers.forEach(finish);
  }
} finally {
  for (const s of servers) {
    clearInterval(s.timer);
    s.child.kill('SIGTERM');
  }
}

function finish(s) {
  if (a['server-log']) writeFileSync(`${a['server-log']}-${s.name}.log`, s.marks.join(''));
  const st = status(s.child.pid);
  s.checks = /load checks: ([^\n]*)/.exec(s.stderr())?.[1] ?? s.checks;
  s.end = { rss: st.rss, hwm: st.hwm, rollup: rollup(s.child.pid) };
  clearInterval(s.timer);
  s.child.kill('SIGTERM');
}

const out = {
  model, threads, rounds, loadAverage: os.loadavg(),
  variants: servers.map((s) => ({
    name: s.name, env: s.env, checks: s.checks,
    load: { ms: s.load.ms, rssMB: MB(s.load.rss), peakMB: MB(s.load.hwm), anonMB: MB(s.load.anon), fileMB: MB(s.load.file) },
    phases: Object.fromEntries(Object.entries(s.after).map(([k, v]) => [k, { rssMB: MB(v.rss), peakMB: MB(v.peak), hwmMB: MB(v.hwm) }])),
    end: { rssMB: MB(s.end.rss), peakMB: MB(s.end.hwm), anonMB: MB(s.end.rollup.Anonymous), fileMB: MB(s.end.rollup.Rss - s.end.rollup.Anonymous) },
    medians: Object.fromEntries(Object.entries(s.samples).map(([k, xs]) => [k, Math.round(median(xs) * 10) / 10])),
    samples: s.samples,
  })),
};
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
if (!a['cache-dir']) rmSync(cacheDir, { recursive: true, force: true });
