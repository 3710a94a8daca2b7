#!/usr/bin/env node
// edgellm benchmark: `npm run bench -- --model bench/models/smollm2-135m --dtype q8 [--quick]`.
// See bench/README.md for what each figure means. Every child process (the server, the transformers.js
// pipeline, the raw onnxruntime loop and step) is killed at the end, on errors and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { post, streamCompletion } from './lib/http.mjs';
import { CpuMonitor, cpu, processCpuSeconds } from './lib/cpu.mjs';
import { measureBandwidth } from './lib/membw.mjs';
import { analyzeOnnx } from './lib/onnx-weights.mjs';
import { installCleanup, killAll, rssBytes, startServer, startWorkerChild } from './lib/procs.mjs';
import { maskCost, NESTED_SCHEMA, stringMaskCost } from './lib/mask-cost.mjs';
import { PromptMaker } from './lib/prompts.mjs';
import { writeReports } from './lib/report.mjs';
import { median, summary } from './lib/stats.mjs';

// `--race`: edgellm against llama.cpp on the same weights (bench/race.mjs), instead of the parts below.
if (process.argv.includes('--race')) {
  const { main: race } = await import('./race.mjs');
  process.exit(await race(process.argv.slice(2).filter((a) => a !== '--race')));
}

// `--lora`: a LoRA adapter at run time against the same adapter merged, on a GGUF base (bench/lora.mjs).
if (process.argv.includes('--lora')) {
  const { main: lora } = await import('./lora.mjs');
  process.exit(await lora(process.argv.slice(2).filter((a) => a !== '--lora')));
}

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');

const USAGE = `usage: npm run bench -- [--model DIR] [--dtype fp32|q8|q4|fp16] [--quick] [options]

  --model DIR|FILE      model directory (transformers.js layout; default bench/models/smollm2-135m), or a
                        .gguf file with its tokenizer.json beside it: part g only (--only g)
  --dtype D             ONNX file to compare (default q8)
  --threads N           onnxruntime intra-op threads for every engine (default: CPU count)
  --quick               smoke run: fewer rounds and tokens, 200 soak requests
  --max-tokens N        new tokens per stream (default 128, quick 48)
  --prompt-tokens N     prompt length, BOS included (default 32)
  --rounds-a N          interleaved single-stream rounds of edgellm, the pipeline and the raw loop
                        (default 10, quick 2)
  --rounds-b N          rounds of the concurrency sweep (default 2, quick 1)
  --streams LIST        concurrency levels (default 1,2,4,8,16)
  --sessions N          /generate sessions of 10 turns, each with a cold twin (default 3, quick 1)
  --turns N             turns per session (default 10)
  --requests N          soak requests for the memory check (default 1000, quick 200)
  --identity-prompts N  prompts of the batched == alone check (default 8, quick 4)
  --identity-model DIR  also run that check on this model (default: <model>-q8dq when --dtype q8 is
                        dynamic q8 and that folder exists); "none" to skip
  --only LIST           run only some parts: a,b,c,d,e,g (e is always measured for the bound; g: the cost
                        of a nested JSON Schema constraint at 1 and 8 streams, and a mask micro-benchmark)
  --server-arg ARG      extra argument for edgellm serve (repeatable; the batched == alone servers get it
                        too), e.g. --server-arg=--cache-max-bytes=0 or --server-arg=--exact-quantized
  --out DIR             results folder (default bench/results)
  --race                edgellm against llama.cpp on a GGUF file instead (see bench/race.mjs, --race --help)
  --lora                a LoRA adapter at run time (--lora-modules) against it merged, on a GGUF base
                        (see bench/lora.mjs, --lora --help)
`;

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    dtype: { type: 'string' },
    threads: { type: 'string' },
    quick: { type: 'boolean' },
    'max-tokens': { type: 'string' },
    'prompt-tokens': { type: 'string' },
    'rounds-a': { type: 'string' },
    'rounds-b': { type: 'string' },
    streams: { type: 'string' },
    sessions: { type: 'string' },
    turns: { type: 'string' },
    requests: { type: 'string' },
    'identity-prompts': { type: 'string' },
    'identity-model': { type: 'string' },
    only: { type: 'string' },
    'server-arg': { type: 'string', multiple: true },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const quick = !!args.quick;
const num = (v, d) => (v === undefined ? d : Number(v));
const cfg = {
  model: resolve(args.model ?? join(HERE, 'models', 'smollm2-135m')),
  dtype: args.dtype ?? 'q8',
  threads: num(args.threads, os.availableParallelism?.() ?? os.cpus().length),
  quick,
  maxTokens: num(args['max-tokens'], quick ? 48 : 128),
  promptTokens: num(args['prompt-tokens'], 32),
  roundsA: num(args["rounds-a"], quick ? 2 : 10),
  roundsB: num(args['rounds-b'], quick ? 1 : 2),
  streams: (args.streams ?? '1,2,4,8,16').split(',').map(Number),
  sessions: num(args.sessions, quick ? 1 : 3),
  turns: num(args.turns, 10),
  turnTokens: 40,
  turnOutput: quick ? 16 : 24,
  requests: num(args.requests, quick ? 200 : 1000),
  soakConcurrency: 4,
  identityPrompts: num(args['identity-prompts'], quick ? 4 : 8),
  only: new Set((args.only ?? 'a,b,c,d,e,g').split(',')),
  serverArgs: args['server-arg'] ?? [],
  out: resolve(args.out ?? join(HERE, 'results')),
  ceilingWarmup: 3,
  ceilingSteps: quick ? 8 : 15,
};
const FILES = { fp32: 'model.onnx', fp16: 'model_fp16.onnx', q8: 'model_quantized.onnx', q4: 'model_q4.onnx' };
if (!FILES[cfg.dtype]) throw new Error(`--dtype must be one of ${Object.keys(FILES).join(', ')}`);
// A GGUF file is served as it is (its own quantization): only the constraint cost (g) needs no ONNX file.
const gguf = cfg.model.endsWith('.gguf');
if (gguf) {
  if ([...cfg.only].some((p) => p !== 'g')) {
    console.error('bench: a .gguf model runs part g only: add --only g');
    process.exit(2);
  }
  if (!args.dtype) cfg.dtype = 'gguf';
  if (!existsSync(cfg.model) || !existsSync(join(dirname(cfg.model), 'tokenizer.json'))) {
    console.error(`bench: ${cfg.model} or a tokenizer.json beside it not found`);
    process.exit(2);
  }
}
const tokenizerDir = gguf ? dirname(cfg.model) : cfg.model;
const onnxPath = gguf ? cfg.model : join(cfg.model, 'onnx', FILES[cfg.dtype]);
if (!existsSync(onnxPath)) {
  console.error(`bench: ${onnxPath} not found. Make the models first: bash bench/make-models.sh (see bench/README.md)`);
  process.exit(2);
}
const modelName = basename(cfg.model).replace(/\.gguf$/, '');
const log = (...m) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/**
 * Runs a timed measurement again (up to `tries` times in all) when other processes took more
 * than `maxForeign` of the machine's CPU during it: the box is shared, and someone's test suite
 * halves any figure taken beside it. Returns the last result with its noise and how many tries were discarded.
 */
async function undisturbed(label, fn, { tries = 2, maxForeign = 0.1 } = {}) {
  let out;
  for (let attempt = 1; attempt <= tries; attempt++) {
    const a = cpu.sample();
    const result = await fn();
    const noise = CpuMonitor.diff(a, cpu.sample());
    out = { result, noise, discarded: attempt - 1, disturbed: !!noise && noise.foreignShare > maxForeign };
    if (!out.disturbed) return out;
    log(`${label}: other processes took ${(noise.foreignShare * 100).toFixed(0)}% of the CPU${attempt < tries ? ', measuring again' : ', keeping it (marked disturbed)'}`);
  }
  return out;
}

/** The measurements no other process disturbed, or all of them when none is clean. */
function cleanOnly(items) {
  const clean = items.filter((x) => !x.disturbed);
  return clean.length ? clean : items;
}

/** The engines of (a), in the order of round 1; later rounds rotate it. */
const ENGINES_A = ['edgellm', 'pipeline', 'rawLoop'];

/** TTFT and decode tok/s of a child that reports each token's time since the call (the pipeline, the raw loop). */
function fromTokenTimes(x) {
  const n = x.tokenTimesMs.length;
  return {
    ttftMs: x.ttftMs,
    decodeTokS: ((n - 1) * 1000) / (x.tokenTimesMs[n - 1] - x.tokenTimesMs[0]),
    tokens: n,
    promptTokens: x.promptTokens,
  };
}

/** Tokens (prompt + generated) of requests finished on the main server: an upper bound on what its prefix cache holds. */
const served = { tokens: 0 };

installCleanup();

// Snapshot the built CLI: other people may rebuild dist/ (tsup cleans it) while a run is going.
function snapshotCli() {
  const dist = join(ROOT, 'dist');
  if (!existsSync(join(dist, 'cli.js'))) throw new Error('dist/cli.js missing: build first (npx tsup --silent)');
  const snap = join(HERE, `.snapshot-${process.pid}`);
  rmSync(snap, { recursive: true, force: true });
  mkdirSync(join(snap, 'bin'), { recursive: true });
  cpSync(dist, join(snap, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts') && !src.endsWith('.d.cts') });
  cpSync(join(ROOT, 'bin', 'edgellm.js'), join(snap, 'bin', 'edgellm.js'));
  return { dir: snap, cli: join(snap, 'bin', 'edgellm.js') };
}

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return { commit, srcDirty: dirty.length > 0 };
  } catch {
    return { commit: 'unknown', srcDirty: undefined };
  }
}

function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

// ------------------------------------------------------------------------------------------------
// (b) helpers: aggregate throughput of B concurrent streams
// ------------------------------------------------------------------------------------------------

/**
 * B streams at once. steady: tokens per second while all B are decoding (from the last stream's first
 * token to the first stream's finish), counting each stream's chunks in that window (a chunk is one
 * token unless the detokenizer held text back; weighted by tokens/chunks of that stream).
 * e2e: all completion tokens / (last finish - first request sent), prefills included.
 */
async function concurrentRun(base, prompts, maxTokens, extra = {}) {
  // each result's t0 (when its request was written) puts its event times on one clock
  const results = await Promise.all(prompts.map((prompt) => streamCompletion(base, { prompt, maxTokens, extra })));
  const start = Math.min(...results.map((r) => r.t0));
  const end = Math.max(...results.map((r) => r.t0 + r.finishMs));
  const totalTokens = results.reduce((s, r) => s + r.tokens, 0);
  served.tokens += totalTokens + results.reduce((s, r) => s + (r.promptTokens ?? 0), 0);
  const T0 = Math.max(...results.map((r) => r.t0 + r.ttftMs));
  const T1 = Math.min(...results.map((r) => r.t0 + r.finishMs));
  let inWindow = 0;
  for (const r of results) {
    const w = r.chunks > 0 ? (r.tokens - 1) / Math.max(1, r.chunks - 1) : 1;
    inWindow += r.textTimes.filter((t) => r.t0 + t > T0 && r.t0 + t <= T1).length * w;
  }
  const steady = T1 - T0 > 50 ? (inWindow * 1000) / (T1 - T0) : NaN;
  return {
    streams: prompts.length,
    steadyTokS: steady,
    steadyWindowMs: T1 - T0,
    e2eTokS: (totalTokens * 1000) / (end - start),
    totalTokens,
    chunkTokenRatio: results.reduce((s, r) => s + r.chunks, 0) / totalTokens,
    ttftMs: summary(results.map((r) => r.ttftMs)),
    perStreamDecodeTokS: summary(results.map((r) => r.decodeTokS)),
    texts: results.map((r) => r.text),
  };
}

// ------------------------------------------------------------------------------------------------
// (c) helpers: /generate sessions
// ------------------------------------------------------------------------------------------------

async function generateStream(base, body) {
  const res = await post(`${base}/generate`, { ...body, stream: true }, { format: 'ndjson' });
  if (res.status !== 200) throw new Error(`/generate: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  let text = '';
  let ttftMs;
  let tokens = 0;
  let finish;
  for (const e of res.events) {
    if (e.data.error) throw new Error(`/generate stream error: ${JSON.stringify(e.data.error)}`);
    if (ttftMs === undefined && (e.data.text || e.data.finish_reason)) ttftMs = e.ms;
    text += e.data.text ?? '';
    tokens = e.data.tokens ?? tokens;
    if (e.data.finish_reason) finish = e.data.finish_reason;
  }
  served.tokens += tokens;
  return { ttftMs, text, tokens, finish, endMs: res.endMs };
}

// ------------------------------------------------------------------------------------------------
// (d) helpers: a soak of short, varied requests
// ------------------------------------------------------------------------------------------------

async function soakRequest(base, i, pm, statusCounts) {
  const kind = i % 10;
  const prompt = pm.loose(5 + ((i * 7) % 56));
  // tokens this request can leave in the prefix cache (chat adds its template: ~10 tokens)
  served.tokens += pm.count(prompt) + 8 + (kind === 6 || kind === 7 ? 10 : 0);
  const sampled = i % 3 === 0 ? { temperature: 0.8, top_p: 0.9, seed: i } : { temperature: 0 };
  let res;
  if (kind <= 3) {
    res = await post(`${base}/v1/completions`, { prompt, max_tokens: 8, stream: true, ...sampled });
  } else if (kind <= 5) {
    res = await post(`${base}/v1/completions`, { prompt, max_tokens: 8, ...sampled }, { format: 'json' });
  } else if (kind === 6) {
    res = await post(`${base}/v1/chat/completions`, { messages: [{ role: 'user', content: prompt }], max_tokens: 8, stream: true, ...sampled });
  } else if (kind === 7) {
    res = await post(`${base}/v1/chat/completions`, { messages: [{ role: 'user', content: prompt }], max_tokens: 8, ...sampled }, { format: 'json' });
  } else if (kind === 8) {
    res = await post(`${base}/generate`, { prompt, request_output_len: 8, ...sampled }, { format: 'json' });
  } else {
    // a client that goes away after its first chunk, mid-generation
    res = await post(`${base}/v1/completions`, { prompt, max_tokens: 64, stream: true, ignore_eos: true, ...sampled }, { onEvent: () => true });
  }
  const key = res.aborted ? 'cancelled' : String(res.status);
  statusCounts[key] = (statusCounts[key] ?? 0) + 1;
}

// ------------------------------------------------------------------------------------------------

async function main() {
  const t0 = Date.now();
  const snap = snapshotCli();
  process.on('exit', () => rmSync(snap.dir, { recursive: true, force: true }));
  const R = {
    meta: {
      date: new Date().toISOString(),
      model: relative(ROOT, cfg.model) || cfg.model,
      modelName,
      dtype: cfg.dtype,
      onnxFile: relative(cfg.model, onnxPath),
      threads: cfg.threads,
      quick,
      config: { ...cfg, only: [...cfg.only], model: undefined, out: undefined },
      node: process.version,
      onnxruntimeNode: pkgVersion('onnxruntime-node'),
      transformers: pkgVersion('@huggingface/transformers'),
      cpu: os.cpus()[0]?.model,
      cpus: os.cpus().length,
      memGB: os.totalmem() / 2 ** 30,
      git: gitInfo(),
    },
  };
  const stamp = R.meta.date.replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  const outBase = join(cfg.out, `${stamp}-${modelName}-${cfg.dtype}${quick ? '-quick' : ''}`);
  const children = [];
  try {
    log(`model ${cfg.model} dtype ${cfg.dtype}${gguf ? '' : ` (${FILES[cfg.dtype]})`}, threads ${cfg.threads}${quick ? ', quick' : ''}`);
    // (e) needs the ONNX file's weights; a GGUF run measures (g) only
    R.weights = gguf ? undefined : analyzeOnnx(onnxPath);
    if (R.weights) log(`weights read per token: ${(R.weights.bytesPerToken / 1e6).toFixed(1)} MB (${R.weights.weightFormat}; file ${(R.weights.fileBytes / 1e6).toFixed(1)} MB)`);

    // (e) bandwidth, first half (the second half runs at the end; the host drifts)
    if (R.weights) log('(e) memory bandwidth ...');
    const bwStart = R.weights && (await measureBandwidth({ threads: cfg.threads, passes: quick ? 5 : 9 }));

    const pm = await PromptMaker.create(tokenizerDir);
    const maxStreams = Math.max(...cfg.streams, 8);
    const serverArgs = [...(gguf ? [] : ['--dtype', cfg.dtype]), '--threads', String(cfg.threads), '--instance-num', String(maxStreams), ...cfg.serverArgs];
    log(`starting edgellm serve ${serverArgs.join(' ')}`);
    const server = await startServer(snap.cli, cfg.model, serverArgs);
    children.push(server);
    R.meta.server = { argv: server.argv, banner: server.banner, rssAtLoad: rssBytes(server.pid) };
    log(server.banner);
    const base = server.url;

    // warm-up: a couple of requests so that lazy allocations and JIT are not in round 1
    for (let i = 0; i < 2; i++) await streamCompletion(base, { prompt: pm.exact(cfg.promptTokens), maxTokens: 16 });
    R.meta.server.attention = /edgellm: attention: (.*)/.exec(server.stderr())?.[1];
    log(`edgellm attention: ${R.meta.server.attention ?? '(not reported)'}`);
    served.tokens += 2 * (cfg.promptTokens + 16);

    R.noise = {};
    let mark = cpu.sample();
    const phaseDone = (name) => {
      const now = cpu.sample();
      const d = CpuMonitor.diff(mark, now);
      if (d) {
        R.noise[name] = d;
        if (d.foreignShare > 0.05 || d.stealShare > 0.05) {
          log(`warning: during ${name}, other processes used ${(d.foreignShare * 100).toFixed(0)}% and steal ${(d.stealShare * 100).toFixed(0)}% of the CPU: its figures are disturbed`);
        }
      }
      mark = now;
    };

    // ---------------------------------------------------------------------------------------------- (a)
    if (cfg.only.has('a')) {
      log('(a) starting the transformers.js pipeline child ...');
      const pipe = await startWorkerChild(join(HERE, 'lib', 'pipeline-child.mjs'), [cfg.model, cfg.dtype, String(cfg.threads)], { name: 'pipeline' });
      children.push(pipe);
      log(`(a) pipeline loaded in ${pipe.ready.loadMs.toFixed(0)} ms`);
      await pipe.request({ prompt: pm.exact(cfg.promptTokens, { fresh: false }), maxNewTokens: 16 });
      log('(a) starting the raw onnxruntime loop child ...');
      const loop = await startWorkerChild(join(HERE, 'lib', 'ort-loop-child.mjs'), [onnxPath, String(cfg.threads)], { name: 'ort-loop' });
      children.push(loop);
      log(`(a) raw loop loaded in ${loop.ready.loadMs.toFixed(0)} ms`);
      await loop.request({ ids: pm.tok.encode(pm.exact(cfg.promptTokens, { fresh: false })), maxNewTokens: 16 });
      const rounds = [];
      for (let r = 0; r < cfg.roundsA; r++) {
        const prompt = pm.exact(cfg.promptTokens);
        const run = {
          edgellm: async () => {
            const x = await streamCompletion(base, { prompt, maxTokens: cfg.maxTokens });
            served.tokens += x.promptTokens + x.tokens;
            return { ttftMs: x.ttftMs, decodeTokS: x.decodeTokS, tokens: x.tokens, chunks: x.chunks, promptTokens: x.promptTokens };
          },
          pipeline: async () => fromTokenTimes(await pipe.request({ prompt, maxNewTokens: cfg.maxTokens })),
          // the same token ids the pipeline's tokenizer makes of the prompt
          rawLoop: async () => fromTokenTimes(await loop.request({ ids: pm.tok.encode(prompt), maxNewTokens: cfg.maxTokens })),
        };
        // ABC, BCA, CAB, ...: each engine goes first in every third round
        const order = ENGINES_A.map((_, i) => ENGINES_A[(r + i) % ENGINES_A.length]);
        const m = await undisturbed(`(a) round ${r + 1}`, async () => {
          const round = { order };
          for (const who of order) {
            await sleep(300); // let the other processes' GC and thread pools settle
            round[who] = await run[who]();
          }
          return round;
        });
        const round = { ...m.result, foreignCpu: m.noise?.foreignShare, discardedTries: m.discarded, disturbed: m.disturbed };
        round.decodeRatio = round.edgellm.decodeTokS / round.pipeline.decodeTokS;
        round.decodeRatioEdgellmOverRawLoop = round.edgellm.decodeTokS / round.rawLoop.decodeTokS;
        round.decodeRatioPipelineOverRawLoop = round.pipeline.decodeTokS / round.rawLoop.decodeTokS;
        rounds.push(round);
        const fmtEngine = (who) => `${who} ${round[who].decodeTokS.toFixed(1)} tok/s, TTFT ${round[who].ttftMs.toFixed(0)} ms`;
        log(
          `(a) round ${r + 1}/${cfg.roundsA}: ${ENGINES_A.map(fmtEngine).join(' | ')} | ` +
            `edgellm/pipeline ${round.decodeRatio.toFixed(2)}, edgellm/raw ${round.decodeRatioEdgellmOverRawLoop.toFixed(2)}, pipeline/raw ${round.decodeRatioPipelineOverRawLoop.toFixed(2)}`,
        );
      }
      const use = cleanOnly(rounds);
      const [e, p, raw] = ENGINES_A.map((who) => ({ ttftMs: summary(use.map((x) => x[who].ttftMs)), decodeTokS: summary(use.map((x) => x[who].decodeTokS)) }));
      R.a = {
        rounds,
        pipelineLoadMs: pipe.ready.loadMs,
        rawLoopLoadMs: loop.ready.loadMs,
        edgellm: e,
        pipeline: p,
        rawLoop: raw,
        decodeRatioOfMedians: e.decodeTokS.median / p.decodeTokS.median,
        decodeRatioPaired: summary(use.map((x) => x.decodeRatio)),
        decodeRatioEdgellmOverRawLoopOfMedians: e.decodeTokS.median / raw.decodeTokS.median,
        decodeRatioEdgellmOverRawLoopPaired: summary(use.map((x) => x.decodeRatioEdgellmOverRawLoop)),
        decodeRatioPipelineOverRawLoopOfMedians: p.decodeTokS.median / raw.decodeTokS.median,
        decodeRatioPipelineOverRawLoopPaired: summary(use.map((x) => x.decodeRatioPipelineOverRawLoop)),
        remeasured: rounds.reduce((n, x) => n + x.discardedTries, 0),
        disturbedKept: rounds.filter((x) => x.disturbed).length,
        usedRounds: use.length,
        ttftRatioOfMedians: p.ttftMs.median / e.ttftMs.median,
        promptTokens: Object.fromEntries(ENGINES_A.map((who) => [who, rounds[0]?.[who].promptTokens])),
        chunksPerToken: median(rounds.map((x) => x.edgellm.chunks / x.edgellm.tokens)),
      };
      await pipe.stop();
      await loop.stop();
      phaseDone('a');
    }

    // ---------------------------------------------------------------------------------------------- (b)
    if (cfg.only.has('b')) {
      log('(b) starting the raw onnxruntime step child ...');
      const ort = await startWorkerChild(join(HERE, 'lib', 'ort-step-child.mjs'), [onnxPath, String(cfg.threads)], { name: 'ort-step' });
      children.push(ort);
      const past = cfg.promptTokens + Math.round(cfg.maxTokens / 2);
      const runs = [];
      const ceiling = [];
      for (let r = 0; r < cfg.roundsB; r++) {
        for (const B of cfg.streams) {
          const m = await undisturbed(`(b) round ${r + 1} B=${B}`, async () => {
            const prompts = Array.from({ length: B }, () => pm.exact(cfg.promptTokens));
            await sleep(300);
            const run = await concurrentRun(base, prompts, cfg.maxTokens);
            delete run.texts;
            await sleep(300);
            const c = await ort.request({ batch: B, past, warmup: cfg.ceilingWarmup, steps: cfg.ceilingSteps });
            return { run, c };
          });
          const { run, c } = m.result;
          runs.push({ round: r, ...run, foreignCpu: m.noise?.foreignShare, discardedTries: m.discarded, disturbed: m.disturbed });
          const stepMs = median(c.stepMs);
          ceiling.push({ round: r, batch: B, past, stepMs, stepMsRange: summary(c.stepMs), tokS: (B * 1000) / stepMs, disturbed: m.disturbed });
          log(
            `(b) round ${r + 1}/${cfg.roundsB} B=${B}: edgellm ${run.steadyTokS.toFixed(1)} tok/s steady, ${run.e2eTokS.toFixed(1)} end-to-end | ` +
              `raw step ${stepMs.toFixed(1)} ms = ${((B * 1000) / stepMs).toFixed(1)} tok/s`,
          );
        }
      }
      await ort.stop();
      phaseDone('b');
      const byB = cfg.streams.map((B) => {
        const rs = cleanOnly(runs.filter((x) => x.streams === B));
        const cs = cleanOnly(ceiling.filter((x) => x.batch === B));
        const steady = summary(rs.map((x) => x.steadyTokS));
        const ceil = summary(cs.map((x) => x.tokS));
        return {
          streams: B,
          steadyTokS: steady,
          e2eTokS: summary(rs.map((x) => x.e2eTokS)),
          ttftMs: summary(rs.map((x) => x.ttftMs.median)),
          ceilingStepMs: summary(cs.map((x) => x.stepMs)),
          ceilingTokS: ceil,
          fractionOfCeiling: steady.median / ceil.median,
        };
      });
      const one = byB.find((x) => x.streams === 1);
      const eight = byB.find((x) => x.streams === 8);
      R.b = {
        past,
        runs,
        ceiling,
        byStreams: byB,
        scaling8over1: eight && one ? eight.steadyTokS.median / one.steadyTokS.median : NaN,
        scaling8over1E2e: eight && one ? eight.e2eTokS.median / one.e2eTokS.median : NaN,
        remeasured: runs.reduce((n, x) => n + x.discardedTries, 0),
        disturbedKept: runs.filter((x) => x.disturbed).length,
      };

      // batched greedy outputs == alone, on a separate server without the prefix cache (so that
      // neither side is served from the other's KV)
      R.identity = [];
      const idModels = [{ dir: cfg.model, dtype: cfg.dtype, weights: R.weights }];
      const sibling = args['identity-model'] === 'none' ? undefined : args['identity-model'] ? resolve(args['identity-model']) : `${cfg.model}-q8dq`;
      if (sibling && (args['identity-model'] || (cfg.dtype === 'q8' && !R.weights.batchInvariant)) && existsSync(join(sibling, 'onnx', FILES.q8))) {
        idModels.push({ dir: sibling, dtype: 'q8', weights: analyzeOnnx(join(sibling, 'onnx', FILES.q8)) });
      }
      for (const m of idModels) {
        const n = cfg.identityPrompts;
        log(`(b) batched == alone on ${basename(m.dir)} ${m.dtype} (${m.weights.weightFormat}), ${n} prompts, --cache-max-bytes 0 ...`);
        // the --server-arg extras too (e.g. --exact-quantized), before the flags this check needs
        const s2 = await startServer(snap.cli, m.dir, [...cfg.serverArgs, '--dtype', m.dtype, '--threads', String(cfg.threads), '--instance-num', String(Math.max(8, n)), '--cache-max-bytes', '0']);
        children.push(s2);
        const prompts = Array.from({ length: n }, () => pm.exact(cfg.promptTokens, { fresh: false }));
        const alone = [];
        for (const p of prompts) alone.push((await streamCompletion(s2.url, { prompt: p, maxTokens: cfg.maxTokens })).text);
        const batched = (await concurrentRun(s2.url, prompts, cfg.maxTokens)).texts;
        await s2.stop();
        const same = alone.map((t, i) => t === batched[i]);
        R.identity.push({
          model: basename(m.dir),
          serverArgs: s2.argv.slice(2), // after "serve <model>"
          dtype: m.dtype,
          weightFormat: m.weights.weightFormat,
          expectedInvariant: m.weights.batchInvariant,
          prompts: n,
          tokens: cfg.maxTokens,
          identical: same.filter(Boolean).length,
          mismatches: same.flatMap((ok, i) => {
            if (ok) return [];
            let k = 0;
            while (k < alone[i].length && alone[i][k] === batched[i][k]) k++;
            const share = pm.count(alone[i].slice(0, k)) - 1; // tokens of the common text (approximate: re-tokenized)
            return [{ i, firstDiffChar: k, sameTokensApprox: share, alone: alone[i].slice(0, 200), batched: batched[i].slice(0, 200) }];
          }),
        });
        log(`(b) identical ${same.filter(Boolean).length}/${n}${m.weights.batchInvariant ? '' : ' (dynamic q8: not expected to be batch-invariant)'}`);
      }
      phaseDone('identity');
    }

    // ---------------------------------------------------------------------------------------------- (c)
    if (cfg.only.has('c')) {
      const sessions = [];
      for (let s = 0; s < cfg.sessions; s++) {
        const m = await undisturbed(`(c) session ${s + 1}`, async () => {
          const id = 1000 + s + Math.floor(Math.random() * 1e6);
          const turnTtft = [];
          let history = '';
          const firstPrompt = pm.exact(cfg.turnTokens);
          for (let t = 1; t <= cfg.turns; t++) {
            const prompt = t === 1 ? firstPrompt : ` ${pm.loose(cfg.turnTokens)}`;
            const x = await generateStream(base, {
              prompt,
              session_id: id,
              sequence_start: t === 1,
              sequence_end: false,
              request_output_len: cfg.turnOutput,
              ignore_eos: true,
              temperature: 0,
            });
            turnTtft.push(x.ttftMs);
            served.tokens += pm.count(prompt);
            if (t < cfg.turns) history += prompt + x.text;
            else history += prompt;
          }
          // the cold twin: the same history as one new request, its first word swapped so that no
          // cached prefix (the session's own KV) can serve it
          const coldText = history.replace(/^\S+/, pm.firstWord());
          const cold = await generateStream(base, {
            prompt: coldText,
            session_id: id + 500_000,
            sequence_start: true,
            sequence_end: true,
            request_output_len: cfg.turnOutput,
            ignore_eos: true,
            temperature: 0,
          });
          // end the measured session
          await post(`${base}/generate`, { prompt: ' bye', session_id: id, sequence_start: false, sequence_end: true, request_output_len: 1 }, { format: 'json' });
          served.tokens += pm.count(coldText);
          return { turnTtftMs: turnTtft, coldTtftMs: cold.ttftMs, historyTokens: pm.count(coldText), turnTokens: cfg.turnTokens };
        });
        const rec = { ...m.result, foreignCpu: m.noise?.foreignShare, discardedTries: m.discarded, disturbed: m.disturbed };
        const turnTtft = rec.turnTtftMs;
        const cold = { ttftMs: rec.coldTtftMs };
        rec.speedup = rec.coldTtftMs / turnTtft[turnTtft.length - 1];
        sessions.push(rec);
        log(`(c) session ${s + 1}: turn ${cfg.turns} TTFT ${turnTtft.at(-1).toFixed(1)} ms, cold (${rec.historyTokens} tokens) ${cold.ttftMs.toFixed(1)} ms, ${rec.speedup.toFixed(1)}x`);
      }
      const useS = cleanOnly(sessions);
      const lastTurn = summary(useS.map((x) => x.turnTtftMs.at(-1)));
      const cold = summary(useS.map((x) => x.coldTtftMs));
      R.c = {
        turns: cfg.turns,
        sessions,
        remeasured: sessions.reduce((n, x) => n + x.discardedTries, 0),
        disturbedKept: sessions.filter((x) => x.disturbed).length,
        lastTurnTtftMs: lastTurn,
        firstTurnTtftMs: summary(useS.map((x) => x.turnTtftMs[0])),
        coldTtftMs: cold,
        historyTokens: summary(useS.map((x) => x.historyTokens)),
        speedupOfMedians: cold.median / lastTurn.median,
        speedupPaired: summary(useS.map((x) => x.speedup)),
      };
      phaseDone('c');
    }

    // ---------------------------------------------------------------------------------------------- (d)
    if (cfg.only.has('d')) {
      log(`(d) ${cfg.requests} short requests, ${cfg.soakConcurrency} at a time ...`);
      await sleep(500);
      const statusCounts = {};
      const kvBytesPerToken = kvBytesPerTokenOf(cfg.model);
      const budgetArg = cfg.serverArgs.join(' ').match(/cache[-_]max[-_]bytes[= ](\d+)/);
      const cacheBudgetBytes = budgetArg ? Number(budgetArg[1]) : 512 * 2 ** 20;
      const cacheEstimate = () => (kvBytesPerToken ? Math.min(cacheBudgetBytes, served.tokens * kvBytesPerToken) : undefined);
      const checkpoints = [{ requests: 0, rssBytes: rssBytes(server.pid), cacheEstimateBytes: cacheEstimate() }];
      const soakPm = new PromptMaker(pm.tok, 12345);
      const tStart = performance.now();
      let i = 0;
      for (let target = 100; target <= cfg.requests; target += 100) {
        const workers = Array.from({ length: cfg.soakConcurrency }, async () => {
          while (i < target) await soakRequest(base, i++, soakPm, statusCounts);
        });
        await Promise.all(workers);
        await sleep(300); // let cancelled jobs leave the batch
        checkpoints.push({
          requests: target,
          rssBytes: rssBytes(server.pid),
          cacheEstimateBytes: cacheEstimate(),
          atS: (performance.now() - tStart) / 1000,
        });
        log(`(d) after ${target}: RSS ${(checkpoints.at(-1).rssBytes / 2 ** 20).toFixed(0)} MiB`);
      }
      const at100 = checkpoints.find((c) => c.requests === 100)?.rssBytes;
      const atEnd = checkpoints.at(-1).rssBytes;
      R.d = {
        requests: cfg.requests,
        concurrency: cfg.soakConcurrency,
        checkpoints,
        statusCounts,
        rssAtLoad: R.meta.server.rssAtLoad,
        ratioEndOver100: atEnd / at100,
        durationS: (performance.now() - tStart) / 1000,
        cacheMaxBytes: budgetArg ? `${cacheBudgetBytes} bytes` : 'default (512 MiB)',
        cacheBudgetBytes,
        kvBytesPerToken,
      };
      phaseDone('d');
    }

    // ---------------------------------------------------------------------------------------------- (g)
    if (cfg.only.has('g')) {
      // Decode rate with a nested JSON Schema vs unconstrained, same prompts, 1 and 8 streams, interleaved.
      const schemaBody = { response_format: { type: 'json_schema', json_schema: { name: 'bench', schema: NESTED_SCHEMA } } };
      const rows = [];
      for (let r = 0; r < cfg.roundsB + 1; r++) {
        for (const B of [1, 8]) {
          const prompts = Array.from({ length: B }, () => pm.exact(cfg.promptTokens));
          for (const mode of ['free', 'schema']) {
            const m = await undisturbed(`(g) round ${r + 1} B=${B} ${mode}`, async () => {
              await sleep(200);
              const cpu0 = processCpuSeconds(server.pid);
              const run = await concurrentRun(base, prompts, cfg.maxTokens, mode === 'schema' ? schemaBody : {});
              // the server's own CPU time per token (onnxruntime's threads included): steadier than rates on a busy machine
              run.serverCpuMsPerToken = ((processCpuSeconds(server.pid) - cpu0) * 1000) / run.totalTokens;
              delete run.texts;
              return run;
            });
            // round 1 warms the compiled constraint and its mask cache; it is not counted
            if (r > 0) rows.push({ round: r, mode, disturbed: m.disturbed, ...m.result });
            log(
              `(g) round ${r + 1} B=${B} ${mode}: ${m.result.steadyTokS.toFixed(1)} tok/s steady, ${m.result.e2eTokS.toFixed(1)} end-to-end, ${m.result.totalTokens} tokens, ` +
                `server CPU ${m.result.serverCpuMsPerToken.toFixed(1)} ms/token`,
            );
          }
        }
      }
      const byStreams = [1, 8].map((B) => {
        const of = (mode) => summary(cleanOnly(rows.filter((x) => x.streams === B && x.mode === mode)).map((x) => x.e2eTokS));
        const free = of('free');
        const schema = of('schema');
        const cpuOf = (mode) => summary(cleanOnly(rows.filter((x) => x.streams === B && x.mode === mode)).map((x) => x.serverCpuMsPerToken));
        const freeCpu = cpuOf('free');
        const schemaCpu = cpuOf('schema');
        return { streams: B, freeTokS: free, schemaTokS: schema, ratio: schema.median / free.median, freeCpuMsPerToken: freeCpu, schemaCpuMsPerToken: schemaCpu, cpuRatio: freeCpu.median / schemaCpu.median };
      });
      const tokenizers = [...new Set([join(tokenizerDir, 'tokenizer.json'), join(ROOT, '..', 'shared', 'models', 'SmolLM2-135M-Instruct', 'tokenizer.json')].map((f) => resolve(f)))];
      const masks = tokenizers.filter((f) => existsSync(f)).map((f) => ({ tokenizer: relative(ROOT, f), ...maskCost(f), strings: stringMaskCost(f) }));
      for (const m of masks) {
        log(
          `(g) mask cost, ${m.tokenizer} (${m.vocab} tokens): check ${m.checkUsMedian.toFixed(1)} us, full mask cold median ${m.fullMaskColdMsMedian.toFixed(2)} ms ` +
            `(max ${m.fullMaskColdMsMax.toFixed(1)} ms), cached mask applied ${m.applyCachedMaskMsMedian.toFixed(2)} ms`,
        );
        const s = m.strings;
        const f = (x) => x.toFixed(2);
        log(
          `(g) cold mask inside a JSON string, CPU ms exact walk -> composed: first string ${f(s.exact.firstString)} -> ${f(s.composed.firstString)}, ` +
            `another property ${f(s.exact.otherProperty)} -> ${f(s.composed.otherProperty)}, another schema ${f(s.exact.otherSchema)} -> ${f(s.composed.otherSchema)}; ` +
            `primed (${f(s.primeMs)} ms once per tokenizer): first string ${f(s.primed.firstString)}`,
        );
      }
      R.g = { rows, byStreams, masks };
      phaseDone('g');
    }

    await server.stop();

    // ---------------------------------------------------------------------------------------------- (e)
    if (R.weights) {
      log('(e) memory bandwidth, second measurement ...');
      const bwEnd = await measureBandwidth({ threads: cfg.threads, passes: quick ? 5 : 9 });
      const pool = (n) => [...(bwStart.byThreads[n]?.passes ?? []), ...(bwEnd.byThreads[n]?.passes ?? [])];
      const one = summary(pool(1));
      const many = summary(pool(cfg.threads));
      R.e = {
        method: bwStart.method,
        start: bwStart,
        end: bwEnd,
        threads: cfg.threads,
        gbs1: one,
        gbsN: many,
        bytesPerToken: R.weights.bytesPerToken,
        boundTokS1: (one.median * 1e9) / R.weights.bytesPerToken,
        boundTokSN: (many.median * 1e9) / R.weights.bytesPerToken,
        boundTokSNMax: (many.max * 1e9) / R.weights.bytesPerToken,
      };
      if (R.a) R.e.singleStreamFractionOfBound = R.a.edgellm.decodeTokS.median / R.e.boundTokSN;
    }
  } finally {
    await killAll();
    rmSync(snap.dir, { recursive: true, force: true });
  }
  R.meta.durationS = (Date.now() - t0) / 1000;
  R.targets = evaluateTargets(R);
  const files = await writeReports(R, outBase);
  log(`done in ${R.meta.durationS.toFixed(0)} s`);
  for (const f of files) console.log(relative(process.cwd(), f));
}

/** fp32 KV bytes per token from config.json (layers x 2 x kv heads x head dim x 4), or undefined. */
function kvBytesPerTokenOf(dir) {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const kv = c.num_key_value_heads ?? c.num_attention_heads;
    const hd = c.head_dim ?? c.hidden_size / c.num_attention_heads;
    return c.num_hidden_layers * 2 * kv * hd * 4;
  } catch {
    return undefined;
  }
}

/** The issue's "done when" checks, as far as this run measured them. */
function evaluateTargets(R) {
  const t = [];
  const dtype = R.meta.dtype;
  if (R.a) {
    const need = dtype === 'q8' ? 1.2 : dtype === 'fp32' ? 1.1 : undefined;
    t.push({
      id: 'a',
      what: `single-stream decode, edgellm / transformers.js pipeline${need ? ` >= ${need}x (${dtype})` : ''}`,
      value: R.a.decodeRatioOfMedians,
      unit: 'x',
      pass: need ? R.a.decodeRatioOfMedians >= need : undefined,
    });
  }
  if (R.b) {
    const eight = R.b.byStreams.find((x) => x.streams === 8);
    if (eight) {
      t.push({ id: 'b1', what: '8 streams >= 2x one stream (steady aggregate)', value: R.b.scaling8over1, unit: 'x', pass: R.b.scaling8over1 >= 2 });
      t.push({ id: 'b2', what: '8 streams >= 85% of the raw batch-8 step ceiling', value: eight.fractionOfCeiling * 100, unit: '%', pass: eight.fractionOfCeiling >= 0.85 });
    }
    for (const id of R.identity ?? []) {
      t.push({
        id: 'b3',
        what: `batched greedy == alone, ${id.model} ${id.dtype} (${id.weightFormat})`,
        value: id.identical,
        unit: `/${id.prompts}`,
        pass: id.expectedInvariant ? id.identical === id.prompts : undefined,
        note: id.expectedInvariant ? undefined : 'dynamic q8 is not batch-invariant: informational',
      });
    }
  }
  for (const x of R.g?.byStreams ?? []) {
    t.push({ id: 'g', what: `nested JSON Schema decode >= 90% of unconstrained, ${x.streams} stream${x.streams > 1 ? 's' : ''} (end-to-end)`, value: x.ratio * 100, unit: '%', pass: x.ratio >= 0.9 });
  }
  if (R.c) t.push({ id: 'c', what: `turn ${R.c.turns} TTFT >= 5x sooner than cold`, value: R.c.speedupOfMedians, unit: 'x', pass: R.c.speedupOfMedians >= 5 });
  if (R.d) {
    const full = R.d.requests >= 1000;
    t.push({
      id: 'd',
      what: `RSS after ${R.d.requests} requests within 10% of after 100`,
      value: (R.d.ratioEndOver100 - 1) * 100,
      unit: '%',
      pass: full ? R.d.ratioEndOver100 <= 1.1 : undefined,
      note: full ? undefined : 'fewer than 1,000 requests (quick run): informational',
    });
  }
  return t;
}

main().catch(async (error) => {
  console.error('bench: failed:', error?.stack ?? error);
  await killAll();
  process.exit(1);
});
