// `npm run bench -- --lora`: the cost of a LoRA adapter applied at run time (`--lora-modules`)
// against the same adapter merged into the weights (`--lora-model`) and the plain base, at 1 and 8
// streams, and a batch mixing the base and two adapters. See bench/README.md ("LoRA").
//
// Needs a GGUF base (default: ../shared/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf;
// the synthetic models of bench/make-models.sh are ONNX folders, which take no adapters). The
// adapters are random PEFT adapters written here, on every attention and MLP projection of every
// layer ("all-linear", the costliest common choice), rank 16.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { streamCompletion } from './lib/http.mjs';
import { installCleanup, killAll, startServer } from './lib/procs.mjs';
import { fmt, fmtRange, median, summary } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const DEFAULT_BASE = resolve(ROOT, '..', 'shared', 'models', 'SmolLM2-135M-Instruct', 'SmolLM2-135M-Instruct.Q4_1.gguf');

const USAGE = `usage: npm run bench -- --lora [--model FILE.gguf] [--rank N] [--rounds N] [--max-tokens N] [--threads N] [--quick]

  --model FILE     GGUF base (default ${DEFAULT_BASE})
  --rank N         rank of the two random adapters (default 16)
  --rounds N       interleaved rounds (default 3, quick 1)
  --max-tokens N   tokens per stream (default 64, quick 24)
  --threads N      onnxruntime threads of every server (default: CPU count)
  --out DIR        results folder (default bench/results)
`;

/** A safetensors file of float32 tensors. */
function safetensors(tensors) {
  const header = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.values.byteLength] };
    offset += t.values.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength), at);
    at += t.values.byteLength;
  }
  return out;
}

/** A random PEFT adapter on every projection of every layer of `config` (a transformers config.json). */
export function writeAdapter(dir, config, rank, seed) {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    return (Math.imul(s ^ (s >>> 15), s | 1) >>> 0) / 2 ** 32;
  };
  const values = (n, std) => Float32Array.from({ length: n }, () => std * (2 * random() - 1));
  const D = config.hidden_size;
  const heads = config.num_attention_heads;
  const hd = config.head_dim ?? D / heads;
  const kv = (config.num_key_value_heads ?? heads) * hd;
  const F = config.intermediate_size;
  const shapes = { 'self_attn.q_proj': [heads * hd, D], 'self_attn.k_proj': [kv, D], 'self_attn.v_proj': [kv, D], 'self_attn.o_proj': [D, heads * hd], 'mlp.gate_proj': [F, D], 'mlp.up_proj': [F, D], 'mlp.down_proj': [D, F] };
  const tensors = [];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    for (const [module, [out, inp]] of Object.entries(shapes)) {
      const name = `base_model.model.model.layers.${l}.${module}`;
      tensors.push({ name: `${name}.lora_A.weight`, shape: [rank, inp], values: values(rank * inp, 1 / Math.sqrt(inp)) });
      tensors.push({ name: `${name}.lora_B.weight`, shape: [out, rank], values: values(out * rank, 0.02) });
    }
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: rank, lora_alpha: 2 * rank, target_modules: Object.keys(shapes).map((m) => m.split('.')[1]) }));
  writeFileSync(join(dir, 'adapter_model.safetensors'), safetensors(tensors));
  return dir;
}

/** `streams` greedy streams at once on one server, each naming its model: aggregate and per-stream decode tok/s. */
async function run(server, models, prompt, maxTokens) {
  const started = performance.now();
  const results = await Promise.all(models.map((model, i) => streamCompletion(server.url, { model, prompt: `${prompt} (${i})`, maxTokens })));
  const wallMs = performance.now() - started;
  const tokens = results.reduce((n, r) => n + r.tokens, 0);
  // Steady decode: from the last stream's first token to the first stream's finish, all streams decoding.
  const t0 = Math.max(...results.map((r) => r.t0 + r.ttftMs));
  const t1 = Math.min(...results.map((r) => r.t0 + r.finishMs));
  return { aggregateTokS: (tokens * 1000) / wallMs, perStreamDecodeTokS: median(results.map((r) => r.decodeTokS)), steadyMs: t1 - t0 };
}

export async function main(argv) {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, rank: { type: 'string' }, rounds: { type: 'string' }, 'max-tokens': { type: 'string' },
      threads: { type: 'string' }, quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const base = resolve(args.model ?? DEFAULT_BASE);
  if (!existsSync(base)) {
    console.error(`bench --lora: no GGUF base at ${base}; give one with --model FILE.gguf (the ONNX models of bench/make-models.sh take no adapters).`);
    return 2;
  }
  const quick = !!args.quick;
  const cfg = {
    rank: Number(args.rank ?? 16),
    rounds: Number(args.rounds ?? (quick ? 1 : 3)),
    maxTokens: Number(args['max-tokens'] ?? (quick ? 24 : 64)),
    threads: Number(args.threads ?? os.availableParallelism?.() ?? os.cpus().length),
  };
  const log = (...m) => console.error(`[bench lora ${new Date().toISOString().slice(11, 19)}]`, ...m);
  installCleanup();
  const work = mkdtempSync(join(os.tmpdir(), 'edgellm-bench-lora-'));
  const cli = join(ROOT, 'bin', 'edgellm.js');
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js missing: build first (npx tsup --silent)');
  const common = ['--threads', String(cfg.threads), '--instance-num', '8', '--cache-max-bytes', '0'];
  process.env.EDGELLM_CACHE = join(work, 'cache'); // the servers inherit it: conversions go to the scratch cache
  const servers = [];
  const start = async (args) => {
    const server = await startServer(cli, base, args);
    servers.push(server);
    return server;
  };
  try {
    log(`base ${base}, rank ${cfg.rank}, ${cfg.rounds} rounds of ${cfg.maxTokens} tokens, threads ${cfg.threads}; load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    const plain = await start(common);
    const dir = /from (\S+)\)$/.exec(plain.banner)?.[1];
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const sql = writeAdapter(join(work, 'sql'), config, cfg.rank, 1);
    const poem = writeAdapter(join(work, 'poem'), config, cfg.rank, 2);
    log('starting the merged (--lora-model) and run-time (--lora-modules) servers ...');
    const merged = await start([...common, '--lora-model', sql]);
    const runtime = await start([...common, '--lora-modules', `sql=${sql}`, `poem=${poem}`]);
    const baseId = /serving (\S+?),? /.exec(plain.banner)?.[1];
    const rtBase = /serving (\S+?),? /.exec(runtime.banner)?.[1];
    const prompt = 'Write a short story about a lighthouse keeper who finds a message in a bottle';
    const cases = [
      { key: 'plain1', label: 'base, no adapters', server: plain, models: [baseId] },
      { key: 'merged1', label: 'adapter merged (--lora-model)', server: merged, models: [baseId] },
      { key: 'runtime1', label: 'adapter at run time (--lora-modules)', server: runtime, models: ['sql'] },
      { key: 'runtimeBase1', label: 'base id of the --lora-modules server', server: runtime, models: [rtBase] },
      { key: 'plain8', label: 'base, no adapters', server: plain, models: Array(8).fill(baseId) },
      { key: 'merged8', label: 'adapter merged (--lora-model)', server: merged, models: Array(8).fill(baseId) },
      { key: 'runtime8', label: 'adapter at run time (--lora-modules)', server: runtime, models: Array(8).fill('sql') },
      { key: 'mixed8', label: 'run time, mixed: 3 base + 3 sql + 2 poem', server: runtime, models: [rtBase, 'sql', 'poem', rtBase, 'sql', 'poem', rtBase, 'sql'] },
    ];
    for (const c of cases.slice(0, 4)) await run(c.server, c.models, 'warm up', 8);
    const rows = Object.fromEntries(cases.map((c) => [c.key, []]));
    for (let r = 0; r < cfg.rounds; r++) {
      // Interleaved, and each round in another order: the machine is shared and drifts.
      const order = r % 2 ? [...cases].reverse() : cases;
      for (const c of order) {
        const x = await run(c.server, c.models, prompt, cfg.maxTokens);
        rows[c.key].push(x);
        log(`round ${r + 1}: ${c.models.length} stream(s), ${c.label}: ${fmt(x.aggregateTokS)} tok/s in all, ${fmt(x.perStreamDecodeTokS)} per stream`);
      }
    }
    const result = {
      date: new Date().toISOString(), base, config: cfg, loadAverage: os.loadavg(), cpus: os.cpus().length,
      cases: cases.map((c) => ({ key: c.key, label: c.label, streams: c.models.length, aggregateTokS: summary(rows[c.key].map((x) => x.aggregateTokS)), perStreamDecodeTokS: summary(rows[c.key].map((x) => x.perStreamDecodeTokS)) })),
    };
    const by = Object.fromEntries(result.cases.map((c) => [c.key, c]));
    const ratio = (a, b) => by[a].aggregateTokS.median / by[b].aggregateTokS.median;
    result.ratios = { runtimeOverMerged1: ratio('runtime1', 'merged1'), runtimeOverMerged8: ratio('runtime8', 'merged8'), mixedOverRuntime8: ratio('mixed8', 'runtime8'), runtimeBaseOverPlain1: ratio('runtimeBase1', 'plain1'), mergedOverPlain1: ratio('merged1', 'plain1') };
    const lines = [
      `# LoRA at run time vs merged (${result.date})`, '',
      `Base ${base}; two random PEFT adapters, rank ${cfg.rank}, on all 7 projections of every layer; ${cfg.maxTokens} greedy tokens per stream; ${cfg.rounds} interleaved rounds; threads ${cfg.threads}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(', ')} on ${os.cpus().length} CPUs.`, '',
      '| streams | server | tok/s in all, median [min-max] | decode tok/s per stream |', '|---|---|---|---|',
      ...result.cases.map((c) => `| ${c.streams} | ${c.label} | ${fmtRange(c.aggregateTokS)} | ${fmtRange(c.perStreamDecodeTokS)} |`), '',
      `Run time / merged: ${fmt(result.ratios.runtimeOverMerged1, 2)}x at 1 stream, ${fmt(result.ratios.runtimeOverMerged8, 2)}x at 8; mixed batch / one adapter at 8 streams: ${fmt(result.ratios.mixedOverRuntime8, 2)}x; ` +
        `the run-time server's base id / the plain base: ${fmt(result.ratios.runtimeBaseOverPlain1, 2)}x; merged / plain base: ${fmt(result.ratios.mergedOverPlain1, 2)}x (1 stream).`,
    ];
    const out = resolve(args.out ?? join(HERE, 'results'));
    mkdirSync(out, { recursive: true });
    const stamp = result.date.replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
    writeFileSync(join(out, `${stamp}-lora.json`), JSON.stringify(result, null, 2));
    writeFileSync(join(out, `${stamp}-lora.md`), lines.join('\n') + '\n');
    process.stdout.write(lines.join('\n') + '\n');
    log(`wrote ${join(out, `${stamp}-lora.md`)}`);
    return 0;
  } finally {
    await Promise.all(servers.map((s) => s.stop())); // stopped on purpose: no "server exited" report
    await killAll();
    rmSync(work, { recursive: true, force: true });
  }
}
