// Writes <base>.json, <base>.md, <base>.svg and (with @resvg/resvg-js installed in bench/) <base>.png.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fmt, fmtRange } from './stats.mjs';

const MiB = (b) => b / 2 ** 20;

export async function writeReports(R, base) {
  mkdirSync(dirname(base), { recursive: true });
  const files = [];
  writeFileSync(`${base}.json`, JSON.stringify(R, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2));
  files.push(`${base}.json`);
  writeFileSync(`${base}.md`, markdown(R));
  files.push(`${base}.md`);
  const svg = chart(R);
  writeFileSync(`${base}.svg`, svg);
  files.push(`${base}.svg`);
  const png = await toPng(svg);
  if (png) {
    writeFileSync(`${base}.png`, png);
    files.push(`${base}.png`);
  }
  return files;
}

export async function toPng(svg) {
  let Resvg;
  try {
    const require = createRequire(import.meta.url);
    ({ Resvg } = require('@resvg/resvg-js'));
  } catch {
    console.error('bench: @resvg/resvg-js is not installed in bench/ (npm --prefix bench install): wrote the SVG chart only');
    return undefined;
  }
  const r = new Resvg(svg, { fitTo: { mode: 'width', value: 1600 }, background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
  return r.render().asPng();
}

// ------------------------------------------------------------------------------------------------

function markdown(R) {
  const m = R.meta;
  const L = [];
  L.push(`# edgellm benchmark: ${m.modelName} ${m.dtype} (\`${m.onnxFile}\`), ${m.threads} threads${m.quick ? ' — quick run' : ''}`);
  L.push('');
  L.push(
    `${m.date} · commit ${m.git.commit}${m.git.srcDirty ? ' (src/ modified)' : ''} · Node ${m.node} · onnxruntime-node ${m.onnxruntimeNode} · ` +
      `@huggingface/transformers ${m.transformers} · ${m.cpus}× ${m.cpu} · ${fmt(m.memGB, 0)} GiB · run took ${fmt(m.durationS, 0)} s`,
  );
  L.push('');
  L.push(`Server: \`edgellm ${m.server?.argv?.join(' ')}\`${m.server?.attention ? ` · attention: ${m.server.attention}` : ''}`);
  L.push('');
  if (R.noise && Object.keys(R.noise).length) {
    const phases = Object.entries(R.noise);
    const bad = phases.filter(([, d]) => d.foreignShare > 0.05 || d.stealShare > 0.05);
    L.push(
      `Host noise — CPU taken by other processes / hypervisor steal, per phase: ` +
        phases.map(([k, d]) => `${k} ${fmt(d.foreignShare * 100, 0)}% / ${fmt(d.stealShare * 100, 0)}%`).join(', ') +
        (bad.length ? `. **Warning: ${bad.map(([k]) => k).join(', ')} ran while something else used the CPU; re-run for clean figures.**` : '.'),
    );
    L.push('');
  }
  if (R.targets?.length) {
    L.push('## Targets (issue 3, "done when")');
    L.push('');
    L.push('| check | measured | result |');
    L.push('|---|---|---|');
    for (const t of R.targets) {
      const res = t.pass === undefined ? `info${t.note ? `: ${t.note}` : ''}` : t.pass ? '**pass**' : '**FAIL**';
      L.push(`| (${t.id}) ${t.what} | ${fmt(t.value, t.unit === '%' ? 1 : t.unit === 'x' ? 2 : 0)}${t.unit} | ${res} |`);
    }
    L.push('');
  }
  if (R.a) {
    const a = R.a;
    L.push(`## (a) Single stream: ${m.config.promptTokens}-token prompt, ${m.config.maxTokens} new tokens, greedy, ${a.rounds.length} interleaved rounds`);
    L.push('');
    L.push('| engine | TTFT ms, median [range] | decode tok/s, median [range] |');
    L.push('|---|---|---|');
    L.push(`| edgellm over HTTP (\`/v1/completions\`, streamed) | ${fmtRange(a.edgellm.ttftMs)} | ${fmtRange(a.edgellm.decodeTokS)} |`);
    L.push(`| transformers.js \`pipeline('text-generation')\`, in-process | ${fmtRange(a.pipeline.ttftMs)} | ${fmtRange(a.pipeline.decodeTokS)} |`);
    if (a.rawLoop) L.push(`| raw onnxruntime greedy loop on the file as exported, in-process | ${fmtRange(a.rawLoop.ttftMs)} | ${fmtRange(a.rawLoop.decodeTokS)} |`);
    L.push('');
    L.push(
      `Decode ratio edgellm / pipeline: **${fmt(a.decodeRatioOfMedians, 2)}x** (of the medians); per round ${fmtRange(a.decodeRatioPaired, 2)}. ` +
        `TTFT pipeline / edgellm: ${fmt(a.ttftRatioOfMedians, 2)}x. ` +
        `Prompt tokens: ${Object.entries(a.promptTokens).map(([k, v]) => `${k === 'rawLoop' ? 'raw loop' : k} ${v}`).join(', ')}. ` +
        `Pipeline load ${fmt(a.pipelineLoadMs, 0)} ms. Stream chunks per token: ${fmt(a.chunksPerToken, 2)}.` +
        noiseNote(a),
    );
    if (a.rawLoop) {
      L.push('');
      L.push(
        `Against the raw loop (decode, of the medians; median and range of the per-round ratios in brackets): ` +
          `edgellm / raw loop **${fmt(a.decodeRatioEdgellmOverRawLoopOfMedians, 2)}x** (${fmtRatios(a.decodeRatioEdgellmOverRawLoopPaired)}), ` +
          `pipeline / raw loop **${fmt(a.decodeRatioPipelineOverRawLoopOfMedians, 2)}x** (${fmtRatios(a.decodeRatioPipelineOverRawLoopPaired)}). ` +
          `The raw loop is \`session.run\`, a JS argmax and \`present.*\` fed back, nothing else, so read edgellm / pipeline against ` +
          `raw loop / pipeline = ${fmt(1 / a.decodeRatioPipelineOverRawLoopOfMedians, 2)}x: about the most an engine that runs this file as exported gains over the pipeline. ` +
          `edgellm can go beyond it where it rewrites the attention into GroupQueryAttention (the attention line above). ` +
          `The three engines take turns going first, round by round.`,
      );
    }
    L.push('');
  }
  if (R.b) {
    const b = R.b;
    L.push(`## (b) Concurrent streams: aggregate tok/s, ${m.config.maxTokens} new tokens each; ceiling = raw onnxruntime step at past ${b.past}`);
    L.push('');
    L.push('| streams | edgellm steady tok/s | edgellm end-to-end tok/s | TTFT ms (median stream) | raw step ms | ceiling tok/s (B / step) | steady / ceiling |');
    L.push('|---|---|---|---|---|---|---|');
    for (const x of b.byStreams) {
      L.push(
        `| ${x.streams} | ${fmtRange(x.steadyTokS)} | ${fmtRange(x.e2eTokS)} | ${fmtRange(x.ttftMs, 0)} | ${fmtRange(x.ceilingStepMs)} | ${fmtRange(x.ceilingTokS)} | ${fmt(x.fractionOfCeiling * 100, 0)}% |`,
      );
    }
    L.push('');
    if (Number.isFinite(b.scaling8over1)) {
      L.push(`8 streams / 1 stream: **${fmt(b.scaling8over1, 2)}x** steady, ${fmt(b.scaling8over1E2e, 2)}x end-to-end.${noiseNote(b)}`);
      L.push('');
    }
    for (const id of R.identity ?? []) {
      L.push(
        `Batched greedy == alone (${id.prompts} prompts × ${id.tokens} tokens, all at once vs one by one, server with \`${(id.serverArgs ?? ['--cache-max-bytes', '0']).join(' ')}\`), ` +
          `${id.model} ${id.dtype} (${id.weightFormat}): **${id.identical}/${id.prompts} identical**` +
          `${id.expectedInvariant ? '' : ' — dynamic q8 quantizes activations per tensor, so it is not batch-invariant; informational'}.` +
          (id.mismatches.length ? ` The others diverge after about ${id.mismatches.map((x) => x.sameTokensApprox).join(', ')} identical tokens (re-tokenized text; details in the JSON).` : ''),
      );
      L.push('');
    }
  }
  if (R.c) {
    const c = R.c;
    L.push(`## (c) \`/generate\` session: ${c.turns} turns of ~${m.config.turnTokens} tokens in, ${m.config.turnOutput} out; cold = the same history as one new request`);
    L.push('');
    L.push('| request | TTFT ms, median [range] |');
    L.push('|---|---|');
    L.push(`| turn 1 (cold, ${m.config.turnTokens} tokens) | ${fmtRange(c.firstTurnTtftMs)} |`);
    L.push(`| turn ${c.turns} (session KV kept) | ${fmtRange(c.lastTurnTtftMs)} |`);
    L.push(`| cold request, same history (${fmtRange(c.historyTokens, 0)} tokens) | ${fmtRange(c.coldTtftMs)} |`);
    L.push('');
    L.push(`Turn ${c.turns} starts **${fmt(c.speedupOfMedians, 1)}x** sooner than cold (per session ${fmtRange(c.speedupPaired, 1)}).${noiseNote(c)}`);
    L.push('');
  }
  if (R.d) {
    const d = R.d;
    L.push(`## (d) Resident memory of the server over ${d.requests} short requests (${d.concurrency} at a time)`);
    L.push('');
    L.push(
      `Mix: completions streamed / not, chat streamed / not, \`/generate\` one-offs, 10% clients that disconnect after the first chunk; ` +
        `5–60-token prompts, max 8 tokens, a third sampled. Prefix cache: ${d.cacheMaxBytes}. RSS right after load ${fmt(MiB(d.rssAtLoad), 0)} MiB (includes the model file's bytes, freed later); 0 = before the soak, after (a)–(c).`,
    );
    L.push('');
    L.push('| requests | ' + d.checkpoints.map((c) => c.requests).join(' | ') + ' |');
    L.push('|---|' + d.checkpoints.map(() => '---').join('|') + '|');
    L.push('| RSS MiB | ' + d.checkpoints.map((c) => fmt(MiB(c.rssBytes), 0)).join(' | ') + ' |');
    if (d.checkpoints.some((c) => Number.isFinite(c.cacheEstimateBytes))) {
      L.push('| KV the prefix cache may hold, MiB (estimate) | ' + d.checkpoints.map((c) => fmt(MiB(c.cacheEstimateBytes ?? NaN), 0)).join(' | ') + ' |');
      L.push('| RSS minus that, MiB | ' + d.checkpoints.map((c) => fmt(MiB(c.rssBytes - (c.cacheEstimateBytes ?? NaN)), 0)).join(' | ') + ' |');
    }
    L.push('');
    if (d.kvBytesPerToken) {
      L.push(
        `The estimate is what finished requests on this server (those of (a)–(c) too) could leave in the prefix cache: their prompt + generated tokens × ` +
          `${fmt(d.kvBytesPerToken / 1024, 1)} KiB of KV per token, capped at the cache budget (${fmt(MiB(d.cacheBudgetBytes), 0)} MiB) — an upper bound; ` +
          `RSS growing with it is the cache filling, not a leak. \`--server-arg=--cache-max-bytes=0\` measures without it.`,
      );
      L.push('');
    }
    L.push(
      `After ${d.requests} / after 100: **${fmt((d.ratioEndOver100 - 1) * 100, 1)}%**. ` +
        `Outcomes: ${Object.entries(d.statusCounts).map(([k, v]) => `${k}: ${v}`).join(', ')}. ${fmt(d.durationS, 0)} s.`,
    );
    L.push('');
  }
  if (R.g) {
    const g = R.g;
    L.push(`## (g) Constraint cost: nested JSON Schema vs unconstrained, same prompts, ${m.config.maxTokens} new tokens, greedy`);
    L.push('');
    L.push('| streams | free tok/s (end-to-end) | schema tok/s | schema / free | server CPU ms/token free | schema | free / schema (CPU) |');
    L.push('|---|---|---|---|---|---|---|');
    for (const x of g.byStreams) {
      L.push(
        `| ${x.streams} | ${fmtRange(x.freeTokS)} | ${fmtRange(x.schemaTokS)} | **${fmt(x.ratio * 100, 0)}%** | ${fmtRange(x.freeCpuMsPerToken)} | ${fmtRange(x.schemaCpuMsPerToken)} | ${fmt(x.cpuRatio * 100, 0)}% |`,
      );
    }
    L.push('');
    for (const k of g.masks) {
      const s = k.strings;
      L.push(
        `Masks on \`${k.tokenizer}\` (${k.vocab} tokens): checking a sampled token ${fmt(k.checkUsMedian, 1)} us; a cached mask applied ${fmt(k.applyCachedMaskMsMedian, 3)} ms; ` +
          `a cold mask inside a JSON string, CPU ms, exact walk -> composed: first string ${fmt(s.exact.firstString, 2)} -> ${fmt(s.composed.firstString, 2)}, ` +
          `another property ${fmt(s.exact.otherProperty, 2)} -> ${fmt(s.composed.otherProperty, 2)}, another schema ${fmt(s.exact.otherSchema, 2)} -> ${fmt(s.composed.otherSchema, 2)}; ` +
          `with the tokenizer's JSON strings primed (${fmt(s.primeMs, 2)} ms once), the first string ${fmt(s.primed.firstString, 2)}.`,
      );
      L.push('');
    }
  }
  if (R.e) {
    const e = R.e;
    L.push('## (e) Memory bandwidth and the bound it implies');
    L.push('');
    L.push(
      `Weights read per decoded token: **${fmt(e.bytesPerToken / 1e6, 1)} MB** (all initializers of \`${m.onnxFile}\` except gather-only tables; ` +
        `file ${fmt(R.weights.fileBytes / 1e6, 1)} MB, ${R.weights.weightFormat}). ${e.method}, at the start and at the end of the run.`,
    );
    L.push('');
    L.push('| threads | read GB/s, median [range] | bound tok/s = bandwidth / bytes per token |');
    L.push('|---|---|---|');
    L.push(`| 1 | ${fmtRange(e.gbs1)} | ${fmt(e.boundTokS1, 0)} |`);
    if (e.threads !== 1) L.push(`| ${e.threads} | ${fmtRange(e.gbsN)} | ${fmt(e.boundTokSN, 0)} (at the best pass: ${fmt(e.boundTokSNMax, 0)}) |`);
    L.push('');
    if (e.singleStreamFractionOfBound !== undefined) {
      L.push(`edgellm single-stream decode reaches ${fmt(e.singleStreamFractionOfBound * 100, 0)}% of the ${e.threads}-thread bound.`);
      L.push('');
    }
  }
  L.push('Noise: this is a shared 2-core VM; absolute figures move by up to 2x between minutes. Compare the interleaved ratios, and the ranges.');
  L.push('');
  return L.join('\n');
}

/** "median [min–max]" of per-round ratios, all of them with an x. */
function fmtRatios(s) {
  if (!s?.n) return 'n/a';
  return s.n === 1 ? `${fmt(s.median, 2)}x` : `${fmt(s.median, 2)}x [${fmt(s.min, 2)}–${fmt(s.max, 2)}x]`;
}

function noiseNote(x) {
  if (!x.remeasured && !x.disturbedKept) return '';
  return ` ${x.remeasured} measurement(s) re-taken because other processes used over 10% of the CPU meanwhile` +
    (x.disturbedKept ? `; ${x.disturbedKept} still disturbed after a second try (left out of the medians when a clean one exists)` : '') + '.';
}

// ------------------------------------------------------------------------------------------------

const COLORS = { edgellm: '#2563eb', pipeline: '#f59e0b', rawLoop: '#16a34a', ceiling: '#94a3b8', e2e: '#1e3a8a', bound: '#dc2626' };

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const k of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}

/**
 * A bar panel. groups: [{ label, bars: [{ value, min, max, color, outline, marker }] }].
 * lines: [{ value, color, label }] horizontal reference lines.
 */
function panel({ x, y, w, h, title, yLabel, groups, lines = [] }) {
  const vals = groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.max, b.marker].filter(Number.isFinite)));
  const ymax = niceMax(Math.max(...vals, ...lines.map((l) => l.value).filter(Number.isFinite), 1e-9) * 1.05);
  const out = [];
  const Y = (v) => y + h - (Math.min(v, ymax) / ymax) * h;
  out.push(`<text x="${x + w / 2}" y="${y - 22}" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${x - 44}" y="${y + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x - 44} ${y + h / 2})">${esc(yLabel)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (ymax * i) / 5;
    out.push(`<line x1="${x}" x2="${x + w}" y1="${Y(v)}" y2="${Y(v)}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${x - 6}" y="${Y(v) + 4}" text-anchor="end" font-size="11" fill="#374151">${v >= 100 ? v.toFixed(0) : +v.toFixed(1)}</text>`);
  }
  out.push(`<line x1="${x}" x2="${x}" y1="${y}" y2="${y + h}" stroke="#6b7280"/><line x1="${x}" x2="${x + w}" y1="${y + h}" y2="${y + h}" stroke="#6b7280"/>`);
  const gw = w / groups.length;
  groups.forEach((g, gi) => {
    const n = g.bars.length;
    const bw = Math.min(46, (gw * 0.8) / n);
    const gx = x + gi * gw + (gw - bw * n) / 2;
    g.bars.forEach((b, bi) => {
      const bx = gx + bi * bw;
      if (Number.isFinite(b.value)) {
        const fill = b.outline ? 'white' : b.color;
        out.push(`<rect x="${bx + 2}" y="${Y(b.value)}" width="${bw - 4}" height="${y + h - Y(b.value)}" fill="${fill}" stroke="${b.color}" stroke-width="${b.outline ? 2 : 0}"/>`);
        const top = Number.isFinite(b.max) && b.max > b.value ? b.max : b.value;
        out.push(`<text x="${bx + bw / 2}" y="${Y(top) - 5}" text-anchor="middle" font-size="10" fill="#111827">${b.value >= 100 ? b.value.toFixed(0) : b.value.toFixed(1)}</text>`);
      }
      if (Number.isFinite(b.min) && Number.isFinite(b.max) && b.max > b.min) {
        const cx = bx + bw / 2;
        out.push(`<line x1="${cx}" x2="${cx}" y1="${Y(b.max)}" y2="${Y(b.min)}" stroke="#111827" stroke-width="1.2"/>`);
        out.push(`<line x1="${cx - 5}" x2="${cx + 5}" y1="${Y(b.max)}" y2="${Y(b.max)}" stroke="#111827"/><line x1="${cx - 5}" x2="${cx + 5}" y1="${Y(b.min)}" y2="${Y(b.min)}" stroke="#111827"/>`);
      }
      if (Number.isFinite(b.marker)) {
        out.push(`<circle cx="${bx + bw / 2}" cy="${Y(b.marker)}" r="4" fill="${COLORS.e2e}"/>`);
      }
    });
    out.push(`<text x="${x + gi * gw + gw / 2}" y="${y + h + 16}" text-anchor="middle" font-size="12">${esc(g.label)}</text>`);
  });
  for (const l of lines) {
    if (!Number.isFinite(l.value)) continue;
    out.push(`<line x1="${x}" x2="${x + w}" y1="${Y(l.value)}" y2="${Y(l.value)}" stroke="${l.color}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
    out.push(`<text x="${x + w - 4}" y="${Y(l.value) - 5}" text-anchor="end" font-size="11" fill="${l.color}">${esc(l.label)}</text>`);
  }
  return out.join('\n');
}

function legend(x, y, items, step = 210) {
  return items
    .map((it, i) => {
      const lx = x + i * step;
      const sw =
        it.kind === 'dot'
          ? `<circle cx="${lx + 7}" cy="${y - 4}" r="4" fill="${it.color}"/>`
          : it.kind === 'dash'
            ? `<line x1="${lx}" x2="${lx + 16}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-dasharray="5 3" stroke-width="2"/>`
            : `<rect x="${lx}" y="${y - 11}" width="14" height="12" fill="${it.outline ? 'white' : it.color}" stroke="${it.color}" stroke-width="${it.outline ? 2 : 0}"/>`;
      return `${sw}<text x="${lx + 20}" y="${y}" font-size="12">${esc(it.label)}</text>`;
    })
    .join('\n');
}

function chart(R) {
  const W = 1200;
  const H = 520;
  const parts = [];
  const m = R.meta;
  parts.push(`<text x="${W / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">edgellm vs transformers.js — ${esc(m.modelName)} ${esc(m.dtype)}, ${m.threads} threads${m.quick ? ' (quick)' : ''}</text>`);
  parts.push(`<text x="${W / 2}" y="48" text-anchor="middle" font-size="12" fill="#4b5563">${esc(m.date.slice(0, 16).replace('T', ' '))} · ${esc(m.cpu ?? '')} · medians, whiskers = range over interleaved rounds</text>`);
  if (R.a) {
    const a = R.a;
    const bound = R.e?.boundTokSN;
    // one bar per engine; JSON from before the raw loop has no rawLoop
    const engines = [
      ['edgellm', 'edgellm'],
      ['pipeline', 'pipeline'],
      ['rawLoop', 'raw loop'],
    ].filter(([k]) => a[k]);
    const bars = (key) => engines.map(([k, label]) => ({ label, bars: [{ ...range(a[k][key]), color: COLORS[k] }] }));
    const maxA = Math.max(...engines.map(([k]) => a[k].decodeTokS.max));
    parts.push(
      panel({
        x: 80, y: 110, w: 270, h: 300,
        title: '(a) single-stream decode', yLabel: 'tok/s',
        groups: bars('decodeTokS'),
        lines: bound && bound < maxA * 2.5 ? [{ value: bound, color: COLORS.bound, label: `bandwidth bound ${bound.toFixed(0)}` }] : [],
      }),
    );
    if (bound && !(bound < maxA * 2.5)) parts.push(`<text x="215" y="448" text-anchor="middle" font-size="11" fill="${COLORS.bound}">bandwidth bound: ${bound.toFixed(0)} tok/s</text>`);
    parts.push(`<text x="215" y="464" text-anchor="middle" font-size="12">edgellm / pipeline ${a.decodeRatioOfMedians.toFixed(2)}x</text>`);
    if (a.rawLoop) {
      parts.push(
        `<text x="215" y="479" text-anchor="middle" font-size="11">/ raw loop: edgellm ${a.decodeRatioEdgellmOverRawLoopOfMedians.toFixed(2)}x, pipeline ${a.decodeRatioPipelineOverRawLoopOfMedians.toFixed(2)}x</text>`,
      );
    }
    parts.push(
      panel({
        x: 420, y: 110, w: 210, h: 300,
        title: '(a) time to first token', yLabel: 'ms',
        groups: bars('ttftMs'),
      }),
    );
  }
  if (R.b) {
    parts.push(
      panel({
        x: 710, y: 110, w: 450, h: 300,
        title: '(b) aggregate throughput vs concurrent streams', yLabel: 'tok/s',
        groups: R.b.byStreams.map((s) => ({
          label: `${s.streams}`,
          bars: [
            { ...range(s.steadyTokS), color: COLORS.edgellm, marker: s.e2eTokS.median },
            { value: s.ceilingTokS.median, color: COLORS.ceiling, outline: true },
          ],
        })),
      }),
    );
    parts.push(`<text x="935" y="450" text-anchor="middle" font-size="12">concurrent streams (ceiling: raw onnxruntime step at batch B, past ${R.b.past})</text>`);
  }
  const items = [
    { label: 'edgellm (steady)', color: COLORS.edgellm },
    { label: 'transformers.js pipeline', color: COLORS.pipeline },
    ...(R.a?.rawLoop ? [{ label: 'raw onnxruntime loop', color: COLORS.rawLoop }] : []),
    { label: 'raw onnxruntime ceiling', color: COLORS.ceiling, outline: true },
    { label: 'edgellm end-to-end', color: COLORS.e2e, kind: 'dot' },
    { label: 'bandwidth bound', color: COLORS.bound, kind: 'dash' },
  ];
  parts.push(legend(items.length > 5 ? 50 : 130, 505, items, items.length > 5 ? 188 : 210));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">
<rect width="${W}" height="${H}" fill="white"/>
${parts.join('\n')}
</svg>
`;
}

function range(s) {
  return { value: s.median, min: s.min, max: s.max };
}
