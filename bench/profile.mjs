#!/usr/bin/env node
// Where a decode step goes, per op type: `node bench/profile.mjs --model DIR [--dtype q4] [--streams 1] [--steps 64]`.
// Starts `edgellm serve` with onnxruntime's profiler on (EDGELLM_ORT_PROFILE: the session edgellm really runs,
// after its load-time rewrites), sends --streams concurrent greedy requests of --steps new tokens after a
// --prompt-tokens prompt, stops the server (the profile is written when the session is released), and
// prints, for the decode steps of that batch size, each op type's time per generated token, its share of
// the step, and its nodes per step; then the same per prompt token for the prefills. Times are
// onnxruntime's kernel times (sum over threads' wall time of each node, not CPU time).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { streamCompletion } from './lib/http.mjs';
import { installCleanup, killAll, startServer } from './lib/procs.mjs';
import { PromptMaker } from './lib/prompts.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const { values: a } = parseArgs({
  options: {
    model: { type: 'string' }, dtype: { type: 'string' }, threads: { type: 'string' }, streams: { type: 'string' },
    steps: { type: 'string' }, 'prompt-tokens': { type: 'string' }, top: { type: 'string' }, json: { type: 'string' },
    'server-arg': { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
  },
});
if (a.help) {
  process.stdout.write(`usage: node bench/profile.mjs --model DIR [--dtype q4] [--threads N] [--streams B] [--steps N]
       [--prompt-tokens P] [--top K] [--json FILE] [--server-arg ARG]...
`);
  process.exit(0);
}
const cfg = {
  model: resolve(a.model ?? join(HERE, 'models', 'smollm2-135m')),
  dtype: a.dtype ?? 'q4',
  threads: Number(a.threads ?? os.availableParallelism?.() ?? 2),
  streams: Number(a.streams ?? 1),
  steps: Number(a.steps ?? 64),
  promptTokens: Number(a['prompt-tokens'] ?? 32),
  top: Number(a.top ?? 15),
};

/** The runs of a profile (SequentialExecutor::Execute events) with their node events, batch and new tokens. */
export function runsOf(events) {
  const runs = events
    .filter((e) => e.cat === 'Session' && e.name === 'SequentialExecutor::Execute')
    .map((e) => ({ ts: e.ts, end: e.ts + e.dur, dur: e.dur, nodes: [] }))
    .sort((x, y) => x.ts - y.ts);
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).sort((x, y) => x.ts - y.ts);
  let r = 0;
  for (const n of nodes) {
    while (r < runs.length && runs[r].end < n.ts) r++;
    if (r < runs.length && n.ts >= runs[r].ts) runs[r].nodes.push(n);
  }
  for (const run of runs) {
    // input_ids [B, S]: the first Gather that reads a 2-D int64 tensor (the token embedding).
    for (const n of run.nodes) {
      const ids = n.args.op_name === 'Gather' && n.args.input_type_shape?.find((s) => s.int64?.length === 2);
      if (ids) {
        [run.batch, run.tokens] = ids.int64;
        break;
      }
    }
  }
  return runs.filter((run) => run.batch !== undefined);
}

/**
 * Per op type: microseconds summed over `runs`, and node count. Matmuls are split by their output
 * width (N), so that the LM head (N = vocabulary) and the MLP shows apart from the rest.
 */
export function byOp(runs) {
  const ops = new Map();
  for (const run of runs) {
    for (const n of run.nodes) {
      const op = n.args.op_name;
      const width = /MatMul/.test(op) ? n.args.output_type_shape?.[0] && Object.values(n.args.output_type_shape[0])[0]?.at(-1) : undefined;
      const key = width ? `${op} (N=${width})` : op;
      const o = ops.get(key) ?? { us: 0, nodes: 0 };
      o.us += n.dur;
      o.nodes++;
      ops.set(key, o);
    }
  }
  return [...ops.entries()].sort((x, y) => y[1].us - x[1].us);
}

function table(title, runs, perRunUnits, unit) {
  const units = runs.reduce((s, r) => s + perRunUnits(r), 0);
  const wall = runs.reduce((s, r) => s + r.dur, 0);
  const ops = byOp(runs);
  const kernels = ops.reduce((s, [, o]) => s + o.us, 0);
  const L = [`${title}: ${runs.length} runs, ${units} ${unit}s; run wall ${(wall / 1000 / units).toFixed(3)} ms per ${unit}, ` +
    `kernels ${(kernels / 1000 / units).toFixed(3)} ms (the rest: onnxruntime between kernels)`, '',
  `| op type | ms per ${unit} | share of kernels | nodes per run |`, '|---|---|---|---|'];
  for (const [op, o] of ops.slice(0, cfg.top)) {
    L.push(`| ${op} | ${(o.us / 1000 / units).toFixed(3)} | ${((100 * o.us) / kernels).toFixed(1)}% | ${(o.nodes / runs.length).toFixed(0)} |`);
  }
  const rest = ops.slice(cfg.top).reduce((s, [, o]) => s + o.us, 0);
  if (rest) L.push(`| (${ops.length - cfg.top} other op types) | ${(rest / 1000 / units).toFixed(3)} | ${((100 * rest) / kernels).toFixed(1)}% | |`);
  return { text: L.join('\n'), summary: { runs: runs.length, units, wallMsPerUnit: wall / 1000 / units, ops: ops.map(([op, o]) => ({ op, msPerUnit: o.us / 1000 / units, nodesPerRun: o.nodes / runs.length })) } };
}

async function main() {
  installCleanup();
  const dir = mkdtempSync(join(os.tmpdir(), 'edgellm-profile-'));
  let log = '';
  const args = ['--dtype', cfg.dtype, '--threads', String(cfg.threads), '--instance-num', String(cfg.streams), '--cache-max-bytes', '0', ...(a['server-arg'] ?? [])];
  process.env.EDGELLM_ORT_PROFILE = join(dir, 'ort');
  const server = await startServer(join(ROOT, 'dist', 'cli.js'), cfg.model, args);
  delete process.env.EDGELLM_ORT_PROFILE;
  const pm = await PromptMaker.create(cfg.model.endsWith('.gguf') ? dirname(cfg.model) : cfg.model); // a GGUF's folder holds its tokenizer.json
  try {
    await streamCompletion(server.url, { prompt: pm.exact(cfg.promptTokens), maxTokens: 8 }); // warm-up
    const prompts = Array.from({ length: cfg.streams }, () => pm.exact(cfg.promptTokens));
    await Promise.all(prompts.map((prompt) => streamCompletion(server.url, { prompt, maxTokens: cfg.steps })));
  } finally {
    log = server.stderr();
    await server.stop();
    await killAll();
  }
  // The served session is the one that ran the most (the load probes' sessions run a few calls each; the
  // served one is not always the last created: a probe may load the float reference after it).
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  if (!files.length) throw new Error(`no profile written in ${dir}; server log:\n${log}`);
  const runs = files.map((f) => runsOf(JSON.parse(readFileSync(join(dir, f), 'utf8')))).reduce((a, b) => (b.length > a.length ? b : a));
  rmSync(dir, { recursive: true, force: true });
  // Decode steps of the measured batch, without the first few (allocations, lookahead warming up).
  const decode = runs.filter((r) => r.tokens === 1 && r.batch === cfg.streams).slice(3);
  const prefill = runs.filter((r) => r.tokens > 1);
  const banner = /edgellm: (attention: .*)/.exec(log)?.[1] ?? '';
  const matmul = /edgellm: (dynamic int8 matmuls: .*)/.exec(log)?.[1] ?? '';
  const head = `${cfg.model} ${cfg.dtype}, ${cfg.threads} threads, ${cfg.streams} stream(s) of ${cfg.steps} tokens after ${cfg.promptTokens}-token prompts; load average ${os.loadavg().map((x) => x.toFixed(1)).join('/')}\n${banner}\n${matmul}`;
  const d = table(`decode steps of batch ${cfg.streams}`, decode, (r) => r.batch, 'token');
  const p = table('prefills', prefill, (r) => r.batch * r.tokens, 'prompt token');
  process.stdout.write(`${head}\n\n${d.text}\n\n${p.text}\n`);
  if (a.json) writeFileSync(a.json, JSON.stringify({ config: cfg, attention: banner, matmul, decode: d.summary, prefill: p.summary }, null, 2));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
