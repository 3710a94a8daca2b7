// The race against llama.cpp: `npm run bench -- --race [--gguf FILE] [--model DIR|FILE.gguf] [--dtype q4] [--threads N] [--quick]`.
// llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU binaries from npm, in bench/package.json) on a GGUF file
// against edgellm serve on a model (an ONNX folder until `edgellm serve x.gguf` works; then the same .gguf),
// the same thread count, interleaved round by round (the order alternates), greedy, over HTTP for edgellm:
//   (a) single stream: TTFT and decode tok/s at 32 and 512 prompt tokens (and the raw onnxruntime loop on the
//       ONNX file, the ceiling of any engine that runs it as exported); and on the chat prompts of the
//       reference.json beside the GGUF (ChatML-templated): random words make the model repeat itself, which
//       flatters prompt lookup, and real chats do not;
//   (b) aggregate tok/s at 1/2/4/8/16 concurrent streams (llama.cpp parallel sequences vs edgellm's batch);
//   (c) prefill tok/s of a 1,000-token prompt (prompt tokens / time to the first token);
//   (d) resident memory (RSS now and peak) of each engine's process;
//   (e) edgellm only: the same greedy request gives the same text with a cold and a warm prefix cache, per form raced.
// Writes bench/results/<stamp>-race.{json,md,svg,png}: medians, ranges, and the ratios edgellm / llama.cpp.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { streamCompletion } from './lib/http.mjs';
import { installCleanup, killAll, rssBytes, startHogs, startServer, startWorkerChild } from './lib/procs.mjs';
import { PromptMaker } from './lib/prompts.mjs';
import { toPng } from './lib/report.mjs';
import { median } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const FILES = { fp32: 'model.onnx', q8: 'model_quantized.onnx', q4: 'model_q4.onnx', fp16: 'model_fp16.onnx' };
const log = (...m) => console.error(`[race ${new Date().toISOString().slice(11, 19)}]`, ...m);

export const USAGE = `usage: npm run bench -- --race [options]

  --gguf FILE         llama.cpp's model (default ../shared/models/SmolLM2-135M-Instruct/*.Q4_1.gguf)
  --model DIR|FILE    edgellm's model: an ONNX model folder (default bench/models/smollm2-135m, the
                      synthetic model of the same shape) or a .gguf file once edgellm serves GGUF
  --dtype D           edgellm's ONNX file when --model is a folder (default q4)
  --threads N         threads of both engines (default: CPU count)
  --rounds N          interleaved rounds (default 3, quick 1)
  --max-tokens N      new tokens per single stream (default 128, quick 32)
  --stream-tokens N   new tokens per stream in (b) (default 64, quick 16)
  --streams LIST      concurrency levels of (b) (default 1,2,4,8,16)
  --server-arg ARG    extra argument for edgellm serve (repeatable), e.g. --server-arg=--gguf-accuracy=int8
  --also-arg ARG      race a second edgellm server with these extra arguments too (repeatable), interleaved,
                      e.g. --also-arg=--prompt-lookup=4 ("edgellm --prompt-lookup=4" rows beside "edgellm")
  --int8              with a .gguf --model: also race edgellm with --gguf-accuracy int8 ("edgellm int8",
                      a second server, interleaved with the others)
  --variant ARGS      also race edgellm with these extra serve arguments (space-separated), as "edgellm ARGS"
                      (a further server, interleaved with the others), e.g. --variant=--thread-spinning
  --hog N             N CPU hogs (busy-looping processes, one core each) running from before the first round
                      to the end: how each engine holds up when other processes take cores (default 0)
  --quick             smoke run
  --out DIR           results folder (default bench/results)
`;

function config(argv) {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      gguf: { type: 'string' }, model: { type: 'string' }, dtype: { type: 'string' }, threads: { type: 'string' },
      rounds: { type: 'string' }, 'max-tokens': { type: 'string' }, 'stream-tokens': { type: 'string' },
      streams: { type: 'string' }, quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      'server-arg': { type: 'string', multiple: true }, int8: { type: 'boolean' }, 'also-arg': { type: 'string', multiple: true },
      hog: { type: 'string' }, variant: { type: 'string' },
    },
  });
  const quick = !!a.quick;
  const num = (v, d) => (v === undefined ? d : Number(v));
  const shared = join(ROOT, '..', 'shared', 'models', 'SmolLM2-135M-Instruct', 'SmolLM2-135M-Instruct.Q4_1.gguf');
  return {
    help: !!a.help,
    gguf: resolve(a.gguf ?? shared),
    model: resolve(a.model ?? join(HERE, 'models', 'smollm2-135m')),
    dtype: a.dtype ?? 'q4',
    threads: num(a.threads, os.availableParallelism?.() ?? os.cpus().length),
    rounds: num(a.rounds, quick ? 1 : 3),
    maxTokens: num(a['max-tokens'], quick ? 32 : 128),
    streamTokens: num(a['stream-tokens'], quick ? 16 : 64),
    streams: (a.streams ?? '1,2,4,8,16').split(',').map(Number),
    prefillTokens: 1000,
    serverArgs: a['server-arg'] ?? [],
    int8: !!a.int8,
    alsoArgs: a['also-arg'] ?? [],
    hog: num(a.hog, 0),
    variant: a.variant ? a.variant.split(/\s+/).filter(Boolean) : undefined,
    quick,
    out: resolve(a.out ?? join(HERE, 'results')),
  };
}

const decodeTokS = (times) => (times.length > 1 ? ((times.length - 1) * 1000) / (times.at(-1) - times[0]) : NaN);
const peakRss = (pid) => {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  } catch {
    return NaN;
  }
};

export async function main(argv) {
  const cfg = config(argv);
  if (cfg.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!Number.isInteger(cfg.hog) || cfg.hog < 0) {
    log(`--hog ${cfg.hog}: a number of processes (0 or more)`);
    return 2;
  }
  if (!existsSync(cfg.gguf)) {
    log(`${cfg.gguf} not found (--gguf)`);
    return 2;
  }
  const ggufModel = cfg.model.endsWith('.gguf');
  const onnx = ggufModel ? undefined : join(cfg.model, 'onnx', FILES[cfg.dtype]);
  if (onnx && !existsSync(onnx)) {
    log(`${onnx} not found: bash bench/make-models.sh, or --model`);
    return 2;
  }
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) {
    log('dist/cli.js missing: npx tsup --silent');
    return 2;
  }
  installCleanup();

  // Snapshot the built CLI: others may rebuild dist/ during the run.
  const snap = join(HERE, `.snapshot-race-${process.pid}`);
  mkdirSync(join(snap, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(snap, 'dist'), { recursive: true, filter: (s) => !/\.(map|d\.ts|d\.cts)$/.test(s) });
  process.on('exit', () => rmSync(snap, { recursive: true, force: true }));

  const R = {
    meta: {
      date: new Date().toISOString(), gguf: cfg.gguf, model: cfg.model, dtype: ggufModel ? 'gguf' : cfg.dtype, threads: cfg.threads,
      serverArgs: cfg.serverArgs, hog: cfg.hog, rounds: cfg.rounds, maxTokens: cfg.maxTokens, streamTokens: cfg.streamTokens, quick: cfg.quick, cpu: os.cpus()[0]?.model,
      cpus: os.cpus().length, loadAverageAtStart: os.loadavg(), nodeLlamaCpp: JSON.parse(readFileSync(join(HERE, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version,
    },
    a: {}, b: {}, c: {}, d: {}, e: {},
  };
  const pm = await PromptMaker.create(ggufModel ? dirname(cfg.model) : cfg.model);
  const maxStreams = Math.max(...cfg.streams);
  try {
    log(`llama.cpp on ${basename(cfg.gguf)}, edgellm on ${ggufModel ? basename(cfg.model) : `${basename(cfg.model)} ${cfg.dtype}`}, ${cfg.threads} threads`);
    const llama = await startWorkerChild(join(HERE, 'lib', 'llama-child.mjs'), [cfg.gguf, String(cfg.threads), String(maxStreams), '1152'], { name: 'llama.cpp' });
    R.meta.llama = { loadMs: llama.ready.loadMs, build: llama.ready.build };
    const baseArgs = [...(ggufModel ? [] : ['--dtype', cfg.dtype]), '--threads', String(cfg.threads), '--instance-num', String(maxStreams)];
    // The speed servers run without a prefix cache; (e) starts servers with it.
    const serverArgs = [...baseArgs, '--cache-max-bytes', '0', ...cfg.serverArgs];
    const int8Args = ['--gguf-accuracy', 'int8'];
    const server = await startServer(join(snap, 'dist', 'cli.js'), cfg.model, serverArgs);
    R.meta.edgellm = { banner: server.banner, argv: server.argv };
    // More edgellm servers raced beside the first, interleaved in the same rounds: int8 activations, and any --also-arg set.
    const extras = {};
    if (cfg.int8 && ggufModel) extras['edgellm int8'] = [...serverArgs, ...int8Args];
    if (cfg.alsoArgs.length) extras[`edgellm ${cfg.alsoArgs.join(' ')}`] = [...serverArgs, ...cfg.alsoArgs];
    if (cfg.variant) extras[`edgellm ${cfg.variant.join(' ')}`] = [...serverArgs, ...cfg.variant];
    const others = {};
    for (const [name, args] of Object.entries(extras)) {
      others[name] = await startServer(join(snap, 'dist', 'cli.js'), cfg.model, args);
      R.meta[name] = { banner: others[name].banner, argv: others[name].argv };
    }
    const raw = onnx ? await startWorkerChild(join(HERE, 'lib', 'ort-loop-child.mjs'), [onnx, String(cfg.threads)], { name: 'raw loop' }) : undefined;
    log(server.banner);
    for (const [name, other] of Object.entries(others)) log(`${name}: ${other.banner}`);

    const httpEngine = (srv) => ({
      stream: async (text, _p, m) => {
        const x = await streamCompletion(srv.url, { prompt: text, maxTokens: m });
        return { ttftMs: x.ttftMs, decodeTokS: x.decodeTokS, promptTokens: x.promptTokens };
      },
      streams: async (texts, _p, m) => {
        const start = performance.now();
        const xs = await Promise.all(texts.map((prompt) => streamCompletion(srv.url, { prompt, maxTokens: m })));
        const tokens = xs.reduce((a, x) => a + x.tokens, 0);
        return { tokS: (tokens * 1000) / (performance.now() - start), tokens };
      },
    });
    const engines = {
      'llama.cpp': {
        stream: async (text, p, m) => {
          const x = await llama.request({ op: 'stream', text, promptTokens: p, maxTokens: m });
          return { ttftMs: x.ttftMs, decodeTokS: decodeTokS(x.tokenTimesMs), promptTokens: x.promptTokens };
        },
        streams: async (texts, p, m) => {
          const x = await llama.request({ op: 'streams', texts, promptTokens: p, maxTokens: m });
          return { tokS: (x.tokens * 1000) / x.wallMs, tokens: x.tokens };
        },
      },
      edgellm: httpEngine(server),
      ...Object.fromEntries(Object.entries(others).map(([name, srv]) => [name, httpEngine(srv)])),
    };
    if (raw) {
      engines['raw onnxruntime'] = {
        stream: async (text, _p, m) => {
          const x = await raw.request({ ids: pm.tok.encode(text), maxNewTokens: m });
          return { ttftMs: x.ttftMs, decodeTokS: decodeTokS(x.tokenTimesMs), promptTokens: x.promptTokens };
        },
      };
    }
    const reference = join(dirname(cfg.gguf), 'reference.json');
    const chats = existsSync(reference) && !cfg.quick ? JSON.parse(readFileSync(reference, 'utf8')).chat.map((c) => c.templated) : [];
    // Warm-up: lazy allocations and JIT out of round 1.
    for (const e of Object.values(engines)) await e.stream(pm.exact(32), 32, 8);
    // CPU hogs from here to the end (killed with every other child, also on errors and signals).
    if (cfg.hog > 0) {
      R.meta.hogPids = (await startHogs(cfg.hog)).map((h) => h.pid);
      log(`${cfg.hog} CPU hog${cfg.hog > 1 ? 's' : ''} running (pid ${R.meta.hogPids.join(', ')})`);
    }

    const push = (obj, key, engine, value) => (((obj[key] ??= {})[engine] ??= []).push(value));
    for (let round = 0; round < cfg.rounds; round++) {
      const order = Object.keys(engines);
      if (round % 2) order.reverse();
      log(`round ${round + 1}/${cfg.rounds}: ${order.join(', ')}`);
      // (a) single stream, and (c) prefill: the same texts for every engine of the round
      for (const p of [32, 512]) {
        const text = pm.exact(p);
        for (const name of order) push(R.a, `p${p}`, name, await engines[name].stream(text, p, cfg.maxTokens));
      }
      // (a) on real chat prompts too (reference.json beside the GGUF, ChatML-templated): the random words above
      // make the model repeat itself, which flatters prompt lookup
      for (const chat of chats) {
        for (const name of order.filter((e) => e !== 'raw onnxruntime')) push(R.a, 'pchat', name, await engines[name].stream(chat, 0, cfg.maxTokens));
      }
      const long = pm.exact(cfg.prefillTokens);
      for (const name of order) {
        const x = await engines[name].stream(long, cfg.prefillTokens, 1);
        push(R.c, 'p1000', name, { ttftMs: x.ttftMs, tokS: (x.promptTokens * 1000) / x.ttftMs, promptTokens: x.promptTokens });
      }
      // (b) concurrent streams
      for (const n of cfg.streams) {
        const texts = Array.from({ length: n }, () => pm.exact(32));
        for (const name of order.filter((e) => engines[e].streams)) push(R.b, `s${n}`, name, await engines[name].streams(texts, 32, cfg.streamTokens));
      }
    }
    R.d = {
      'llama.cpp': { rssBytes: rssBytes(llama.pid), peakRssBytes: peakRss(llama.pid) },
      edgellm: { rssBytes: rssBytes(server.pid), peakRssBytes: peakRss(server.pid) },
      ...Object.fromEntries(Object.entries(others).map(([name, srv]) => [name, { rssBytes: rssBytes(srv.pid), peakRssBytes: peakRss(srv.pid) }])),
    };
    await server.stop();
    for (const other of Object.values(others)) await other.stop();
    // (e) a server per form with its prefix cache on (the speed servers run without one)
    const forms = [['edgellm', []], ...(others['edgellm int8'] ? [['edgellm int8', int8Args]] : [])];
    for (const [name, extra] of forms) {
      R.e[name] = await cacheCheck(await startServer(join(snap, 'dist', 'cli.js'), cfg.model, [...baseArgs, ...cfg.serverArgs, ...extra]), pm, cfg.quick ? 32 : 64);
      log(`(e) ${name}: cold == warm for ${R.e[name].filter((x) => x.identical).length}/${R.e[name].length} prompts`);
    }
    R.meta.loadAverageAtEnd = os.loadavg();
  } finally {
    await killAll();
  }
  summarise(R);
  mkdirSync(cfg.out, { recursive: true });
  const base = join(cfg.out, `${R.meta.date.replace(/[:.]/g, '-')}-race${cfg.hog ? `-hog${cfg.hog}` : ''}${cfg.quick ? '-quick' : ''}`);
  writeFileSync(`${base}.json`, JSON.stringify(R, null, 2));
  writeFileSync(`${base}.md`, markdown(R));
  const svg = chart(R);
  writeFileSync(`${base}.svg`, svg);
  const png = await toPng(svg);
  if (png) writeFileSync(`${base}.png`, png);
  process.stdout.write(markdown(R));
  log(`wrote ${base}.{json,md,svg${png ? ',png' : ''}}`);
  return 0;
}

/**
 * (e) For each prompt: its greedy reply on a cold cache (the prompt is new to the server), then a
 * longer prompt that starts with it (its KV stays in the prefix cache), then the prompt again, now
 * served from that cached prefix. The two replies must be the same text.
 */
async function cacheCheck(server, pm, maxTokens) {
  const out = [];
  try {
    for (const p of [48, 300]) {
      const text = pm.exact(p);
      const cold = await streamCompletion(server.url, { prompt: text, maxTokens });
      await streamCompletion(server.url, { prompt: `${text} and then, after a long pause, the story went on`, maxTokens: 4 });
      const warm = await streamCompletion(server.url, { prompt: text, maxTokens });
      out.push({ promptTokens: cold.promptTokens, coldCached: cold.cachedTokens, warmCached: warm.cachedTokens, identical: cold.text === warm.text, cold: cold.text, warm: warm.text });
    }
  } finally {
    await server.stop();
  }
  return out;
}

/** Medians per engine and the ratios edgellm / llama.cpp (ratios of medians). */
function summarise(R) {
  const med = (xs, k) => median(xs.map((x) => x[k]).filter(Number.isFinite));
  const engines = Object.keys(R.d).filter((e) => e.startsWith('edgellm'));
  const ratio = (m, k, e) => (m[e] && m['llama.cpp'] ? med(m[e], k) / med(m['llama.cpp'], k) : NaN);
  // One engine keeps the historical labels; a second one's are prefixed with its name.
  const label = (e, text) => (e === 'edgellm' ? text : `${e}: ${text}`);
  R.ratios = {};
  for (const e of engines) {
    for (const [key, m] of Object.entries(R.a)) {
      R.ratios[label(e, `decode tok/s, ${promptLabel(key)}`)] = ratio(m, 'decodeTokS', e);
      if (key !== 'pchat') R.ratios[label(e, `TTFT, ${promptLabel(key)} (lower is better)`)] = ratio(m, 'ttftMs', e);
    }
    for (const [key, m] of Object.entries(R.b)) R.ratios[label(e, `aggregate tok/s, ${key.slice(1)} streams`)] = ratio(m, 'tokS', e);
    R.ratios[label(e, 'prefill tok/s, 1000 tokens')] = ratio(R.c.p1000 ?? {}, 'tokS', e);
    R.ratios[label(e, 'peak RSS (lower is better)')] = R.d[e].peakRssBytes / R.d['llama.cpp'].peakRssBytes;
  }
}

/** (a)'s rows: `p32` and `p512` are random words of that many tokens, `pchat` the reference chats. */
const promptLabel = (key) => (key === 'pchat' ? 'chat prompts' : `${key.slice(1)}-token prompt`);

function markdown(R) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const range = (xs, k, d = 1) => {
    const v = xs.map((x) => x[k]).filter(Number.isFinite);
    return v.length ? `${f(median(v), d)} (${f(Math.min(...v), d)}-${f(Math.max(...v), d)})` : '-';
  };
  const L = [`# edgellm vs llama.cpp, ${R.meta.date}`, ''];
  L.push(`llama.cpp: node-llama-cpp ${R.meta.nodeLlamaCpp} (${R.meta.llama?.build}) on \`${basename(R.meta.gguf)}\`; edgellm: \`${R.meta.model}\` (${R.meta.dtype}${R.meta.serverArgs?.length ? `, ${R.meta.serverArgs.join(' ')}` : ''}); ` +
    `${R.meta.threads} threads each; ${R.meta.hog ? `**${R.meta.hog} CPU hog${R.meta.hog > 1 ? 's' : ''}** (busy-looping processes) running through every round; ` : ''}${R.meta.rounds} interleaved rounds; ${R.meta.cpus} CPUs (${R.meta.cpu}); load average ` +
    `${R.meta.loadAverageAtStart.map((x) => x.toFixed(1)).join('/')} at the start, ${R.meta.loadAverageAtEnd?.map((x) => x.toFixed(1)).join('/')} at the end. Medians (min-max).`, '');
  L.push('## (a) single stream', '', '| prompt | engine | TTFT ms | decode tok/s |', '|---|---|---|---|');
  for (const [key, m] of Object.entries(R.a)) for (const [e, xs] of Object.entries(m)) L.push(`| ${key === 'pchat' ? 'chat' : key.slice(1)} | ${e} | ${range(xs, 'ttftMs')} | ${range(xs, 'decodeTokS')} |`);
  L.push('', '## (b) concurrent streams, aggregate tok/s', '', '| streams | engine | tok/s |', '|---|---|---|');
  for (const [key, m] of Object.entries(R.b)) for (const [e, xs] of Object.entries(m)) L.push(`| ${key.slice(1)} | ${e} | ${range(xs, 'tokS')} |`);
  L.push('', '## (c) prefill of 1,000 tokens', '', '| engine | time to first token ms | prefill tok/s |', '|---|---|---|');
  for (const [e, xs] of Object.entries(R.c.p1000 ?? {})) L.push(`| ${e} | ${range(xs, 'ttftMs', 0)} | ${range(xs, 'tokS', 0)} |`);
  L.push('', '## (d) resident memory', '', '| engine | RSS at the end MB | peak RSS MB |', '|---|---|---|');
  for (const [e, x] of Object.entries(R.d)) L.push(`| ${e} | ${f(x.rssBytes / 1e6, 0)} | ${f(x.peakRssBytes / 1e6, 0)} |`);
  L.push('', '## (e) the same greedy request, cold and warm prefix cache', '', '| engine | prompt tokens | cached tokens, cold / warm | same text |', '|---|---|---|---|');
  for (const [e, xs] of Object.entries(R.e ?? {})) for (const x of xs) L.push(`| ${e} | ${x.promptTokens} | ${x.coldCached ?? '-'} / ${x.warmCached ?? '-'} | ${x.identical ? 'yes' : '**no**'} |`);
  L.push('', '## edgellm / llama.cpp (ratio of medians)', '', '| figure | ratio |', '|---|---|');
  for (const [k, v] of Object.entries(R.ratios)) L.push(`| ${k} | ${f(v, 2)}x |`);
  return `${L.join('\n')}\n`;
}

/** Horizontal bars of the ratios, a line at 1.0 (parity). */
function chart(R) {
  const rows = Object.entries(R.ratios).filter(([, v]) => Number.isFinite(v));
  const W = 900, rowH = 26, left = 330, top = 50;
  const max = Math.max(2, ...rows.map(([, v]) => v));
  const x = (v) => left + (v / max) * (W - left - 60);
  const H = top + rows.length * rowH + 40;
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows.map(([k, v], i) => {
    const y = top + i * rowH;
    const better = k.includes('lower is better') ? v <= 1 : v >= 1;
    return `<text x="${left - 8}" y="${y + 17}" text-anchor="end" font-size="13">${esc(k)}</text>` +
      `<rect x="${left}" y="${y + 4}" width="${x(v) - left}" height="${rowH - 8}" fill="${better ? '#3a8d4f' : '#c0504d'}"/>` +
      `<text x="${x(v) + 6}" y="${y + 17}" font-size="13">${v.toFixed(2)}x</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="10" y="24" font-size="16">edgellm / llama.cpp, ${R.meta.threads} threads${R.meta.hog ? `, ${R.meta.hog} CPU hog${R.meta.hog > 1 ? 's' : ''}` : ''} (${esc(basename(R.meta.gguf))}; green: edgellm ahead)</text>` +
    bars.join('') +
    `<line x1="${x(1)}" y1="${top - 6}" x2="${x(1)}" y2="${H - 30}" stroke="#333" stroke-dasharray="4 3"/>` +
    `<text x="${x(1)}" y="${H - 12}" text-anchor="middle" font-size="12">1.0 = parity</text></svg>\n`;
}
