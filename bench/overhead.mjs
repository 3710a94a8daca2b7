#!/usr/bin/env node
// What a served token costs beyond the raw onnxruntime step:
//   node bench/overhead.mjs [--model FILE.gguf|DIR] [--threads 1] [--rounds 9] [--max-tokens 128] [--prompt-tokens 32]
// Three ways to decode the same greedy stream, interleaved round by round (the order rotates):
//   raw     the bench's minimal onnxruntime loop (lib/ort-loop-child.mjs, its own process) on the very graph the
//           server runs (the optimized graph its load checks stored), no engine, no HTTP;
//   engine  createNodeRuntime in this process: the inference worker, scheduler, sampling, detokenizer and
//           lookahead, no HTTP; the worker's own run() time per step comes with it (its counters);
//   http    `edgellm serve` over HTTP (SSE), as a client sees it.
// Each is ms per token from the first to the last token (decode only). Prints medians, per-round differences
// and the engine's time outside run() per token (wall - run), the part that is the engine's own.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { streamCompletion } from './lib/http.mjs';
import { installCleanup, killAll, startServer, startWorkerChild } from './lib/procs.mjs';
import { PromptMaker } from './lib/prompts.mjs';
import { median } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const log = (...m) => console.error(`[overhead ${new Date().toISOString().slice(11, 19)}]`, ...m);
const perToken = (times) => (times.at(-1) - times[0]) / (times.length - 1);

/** The folder of the load checks' stored verdict, from the server's log ("verdict stored in DIR" / "from the cache (DIR)"). */
export function verdictDir(serverLog) {
  return /load checks: (?:run at load; verdict stored in (\S+)|from the cache \(([^)]+)\))/.exec(serverLog)?.slice(1).find(Boolean);
}

async function main() {
  const { values: a } = parseArgs({
    options: {
      model: { type: 'string' }, threads: { type: 'string' }, rounds: { type: 'string' }, 'max-tokens': { type: 'string' },
      'prompt-tokens': { type: 'string' }, 'server-arg': { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (a.help) {
    process.stdout.write('usage: node bench/overhead.mjs [--model FILE.gguf|DIR] [--threads N] [--rounds N] [--max-tokens N] [--prompt-tokens N] [--server-arg ARG]...\n');
    return;
  }
  const cfg = {
    model: resolve(a.model ?? join(ROOT, '..', 'shared', 'models', 'SmolLM2-135M-Instruct', 'SmolLM2-135M-Instruct.Q4_1.gguf')),
    threads: Number(a.threads ?? 1),
    rounds: Number(a.rounds ?? 9),
    maxTokens: Number(a['max-tokens'] ?? 128),
    promptTokens: Number(a['prompt-tokens'] ?? 32),
    serverArgs: a['server-arg'] ?? [],
  };
  installCleanup();
  const server = await startServer(join(ROOT, 'dist', 'cli.js'), cfg.model, ['--threads', String(cfg.threads), '--cache-max-bytes', '0', ...cfg.serverArgs]);
  // The load-checks line may follow the "serving" line that startServer waits for.
  for (let i = 0; i < 100 && !verdictDir(server.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
  const dir = verdictDir(server.stderr());
  if (!dir) throw new Error(`the server stored no load-check verdict (EDGELLM_LOAD_CHECKS_CACHE=0?), so its graph cannot be found:\n${server.stderr()}`);
  const graph = join(dir, JSON.parse(readFileSync(join(dir, 'verdict.json'), 'utf8')).graph);
  log(`graph ${graph}`);
  const raw = await startWorkerChild(join(HERE, 'lib', 'ort-loop-child.mjs'), [graph, String(cfg.threads)], { name: 'raw loop', execArgv: ['--single-threaded-gc'] });
  const { createNodeRuntime } = await import(join(ROOT, 'dist', 'node.js'));
  const runtime = await createNodeRuntime({ model: cfg.model, threads: cfg.threads, cacheMaxBytes: 0, log: () => {} });
  const pm = await PromptMaker.create(cfg.model.endsWith('.gguf') ? dirname(cfg.model) : cfg.model);
  const engineRun = [];
  const ways = {
    raw: async (text) => perToken((await raw.request({ ids: pm.tok.encode(text), maxNewTokens: cfg.maxTokens })).tokenTimesMs),
    engine: async (text) => {
      const s0 = await runtime.backendStats();
      const times = [];
      const request = { input: { kind: 'text', text }, template: 'none', sampling: { temperature: 0 }, maxTokens: cfg.maxTokens, stop: [], ignoreEos: true, n: 1 };
      for await (const e of runtime.generate(request)) if (e.type === 'delta') times.push(performance.now());
      const s1 = await runtime.backendStats();
      engineRun.push({ runMs: (s1.runMs - s0.runMs) / (s1.decodeCalls - s0.decodeCalls), hits: s1.lookaheadHits - s0.lookaheadHits, steps: s1.decodeCalls - s0.decodeCalls });
      return perToken(times);
    },
    http: async (text) => {
      const x = await streamCompletion(server.url, { prompt: text, maxTokens: cfg.maxTokens });
      return (x.finishMs - x.ttftMs) / (x.tokens - 1);
    },
  };
  const res = { raw: [], engine: [], http: [] };
  const load = [os.loadavg()[0]];
  try {
    for (const f of Object.values(ways)) await f(pm.exact(cfg.promptTokens)); // warm-up
    engineRun.length = 0;
    const names = Object.keys(ways);
    for (let r = 0; r < cfg.rounds; r++) {
      const order = [...names.slice(r % names.length), ...names.slice(0, r % names.length)];
      const text = pm.exact(cfg.promptTokens); // one prompt per round, the same for the three
      for (const n of order) res[n].push(await ways[n](text));
      load.push(os.loadavg()[0]);
      log(`round ${r + 1}/${cfg.rounds}: ${names.map((n) => `${n} ${res[n].at(-1).toFixed(2)}`).join(', ')} ms/token`);
    }
  } finally {
    await runtime.close();
    await killAll();
  }
  const f = (x) => x.toFixed(2);
  const diff = (x, y) => res[x].map((v, i) => v - res[y][i]);
  const outside = res.engine.map((v, i) => v - engineRun[i].runMs);
  const L = [
    `# A served token beyond the raw step: ${cfg.model.split('/').pop()}, ${cfg.threads} thread(s), ${cfg.promptTokens}-token prompts, ${cfg.maxTokens} tokens, ${cfg.rounds} rounds`,
    '', `load average ${load.map((x) => x.toFixed(1)).join(' ')} (1 min, before and after each round); ms per token, median (min-max)`, '',
    '| | ms per token |', '|---|---|',
    ...Object.entries(res).map(([n, v]) => `| ${n} | ${f(median(v))} (${f(Math.min(...v))}-${f(Math.max(...v))}) |`),
    `| engine: its worker's run() per step | ${f(median(engineRun.map((x) => x.runMs)))} |`,
    '', '| per round | median | rounds |', '|---|---|---|',
    `| http - raw | ${f(median(diff('http', 'raw')))} | ${diff('http', 'raw').map(f).join(' ')} |`,
    `| engine - raw | ${f(median(diff('engine', 'raw')))} | ${diff('engine', 'raw').map(f).join(' ')} |`,
    `| engine outside run() (wall - run) | ${f(median(outside))} | ${outside.map(f).join(' ')} |`,
    '', `lookahead: ${engineRun.reduce((s, x) => s + x.hits, 0)} of ${engineRun.reduce((s, x) => s + x.steps, 0)} decode steps of the engine were started early and used`,
  ];
  process.stdout.write(`${L.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main();
  process.exit(0);
}
