#!/usr/bin/env node
/**
 * Prompt-lookup speculative decoding on a real model: greedy output with and without it, token
 * for token, and decode speed, in one process (two runtimes on the built dist/, runs interleaved).
 * Where the tokens differ, the plain run's top-two logprob margin at the first difference (a
 * logprob difference is the logit difference) says how near a tie the step was.
 *
 *   npx tsup --silent
 *   node bench/lookup.mjs [--model FILE.gguf] [--accuracy exact|int8] [--draft 4,8] [--ngram 3:2]
 *                         [--max-tokens 256] [--rounds 2] [--threads 1] [--prompts all|reference|repetitive|race] [--only I,J]
 *
 * `race`: the race's prompts (bench/race.mjs: random words of exactly 32 and 512 tokens, no template,
 * ignore_eos), three of each.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: join(ROOT, '../shared/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf') },
    accuracy: { type: 'string', default: 'exact' },
    draft: { type: 'string', default: '4' },
    ngram: { type: 'string', default: '3:2' },
    'max-tokens': { type: 'string', default: '256' },
    rounds: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    prompts: { type: 'string', default: 'all' },
    only: { type: 'string' },
  },
});
const { createNodeRuntime } = await import(join(ROOT, 'dist/node.js'));

const reference = JSON.parse(readFileSync(join(dirname(a.model), 'reference.json'), 'utf8'));
const QUOTED =
  'The Amazon rainforest covers much of the Amazon basin of South America. This basin encompasses seven million square ' +
  'kilometres, of which five and a half million square kilometres are covered by the rainforest. The region includes ' +
  'territory belonging to nine nations and 3,344 formally acknowledged indigenous territories.';
const REPETITIVE = [
  'Repeat this list exactly, one item per line: apples, bananas, cherries, dates, elderberries, figs, grapes, honeydew, kiwi, lemons, mangoes, nectarines.',
  'Rename the variable x to count in this code and show the whole code:\n```python\ndef step(x):\n    x = x + 1\n    if x > 10:\n        x = 0\n    return x * 2\n\nprint(step(3))\n```',
  `Here is a text:\n"${QUOTED}"\nSummarise the text above, quoting its key sentence.`,
  'Write the numbers from 1 to 60, separated by commas.',
];
let prompts = [
  ...(a.prompts === 'repetitive' ? [] : reference.chat.map((c) => c.prompt)),
  ...(a.prompts === 'reference' ? [] : REPETITIVE),
];
if (a.prompts === 'race') {
  const { PromptMaker } = await import('./lib/prompts.mjs');
  const pm = await PromptMaker.create(dirname(a.model));
  prompts = [32, 32, 32, 512, 512, 512].map((p) => ({ text: pm.exact(p) }));
}
if (a.only) prompts = a.only.split(',').map((i) => prompts[Number(i)]);
const [maxNgram, minNgram] = a.ngram.split(':').map(Number);
const drafts = a.draft.split(',').map(Number);
const maxTokens = Number(a['max-tokens']);

async function load(lookup) {
  return createNodeRuntime({
    model: a.model, threads: Number(a.threads), ggufAccuracy: a.accuracy, cacheMaxBytes: 0, maxConcurrent: 1,
    promptLookup: lookup ? { maxDraft: lookup, maxNgram, minNgram } : 0, onLog: () => {},
  });
}

async function run(runtime, prompt, logprobs) {
  // a race prompt is raw text with ignore_eos, as the race sends it; the others are chats
  const request = {
    input: typeof prompt === 'string' ? { kind: 'messages', messages: [{ role: 'user', content: prompt }] } : { kind: 'text', text: prompt.text },
    sampling: { temperature: 0 }, stop: [], ignoreEos: typeof prompt !== 'string', n: 1, maxTokens, ...(logprobs && { logprobs: 2 }),
  };
  const tokens = [];
  const tops = [];
  let first;
  for await (const event of runtime.generate(request)) {
    if (event.type !== 'delta') continue;
    first ??= performance.now();
    tokens.push(...event.tokens);
    if (event.logprobs) tops.push(...event.logprobs.map((l) => l.top.map((t) => t.logprob)));
  }
  const end = performance.now();
  // decode rate: tokens after the first over the time after the first
  return { tokens, tops, decodeTokS: tokens.length > 1 ? ((tokens.length - 1) * 1000) / (end - first) : NaN };
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const runtimes = new Map([[0, await load(0)]]);
for (const k of drafts) runtimes.set(k, await load(k));
const results = [];
for (const [i, prompt] of prompts.entries()) {
  const speeds = new Map([...runtimes.keys()].map((k) => [k, []]));
  const outputs = new Map();
  const counted = (k) => ({ ...runtimes.get(k).metrics().specDecode });
  const before = new Map(drafts.map((k) => [k, counted(k)]));
  for (let round = 0; round < Number(a.rounds); round++) {
    const order = round % 2 ? [...runtimes.keys()].reverse() : [...runtimes.keys()];
    for (const k of order) {
      const out = await run(runtimes.get(k), prompt);
      speeds.get(k).push(out.decodeTokS);
      outputs.set(k, out.tokens);
    }
  }
  const plain = outputs.get(0);
  const row = { prompt: (prompt.text ?? prompt).slice(0, 48), tokens: plain.length, plainTokS: median(speeds.get(0)), lookup: {} };
  for (const k of drafts) {
    const spec = outputs.get(k);
    const diverge = plain.findIndex((t, j) => spec[j] !== t);
    const at = diverge < 0 && spec.length !== plain.length ? Math.min(spec.length, plain.length) : diverge;
    const now = counted(k);
    const was = before.get(k);
    const entry = {
      identical: at < 0, tokS: median(speeds.get(k)), speedup: median(speeds.get(k)) / row.plainTokS,
      drafts: now.drafts - was.drafts, accepted: `${now.acceptedTokens - was.acceptedTokens}/${now.draftTokens - was.draftTokens}`,
    };
    if (at >= 0) {
      const { tops } = await run(runtimes.get(0), prompt, true);
      const top = tops[at] ?? [];
      entry.firstDifference = at;
      entry.plainMargin = top.length > 1 ? top[0] - top[1] : undefined;
    }
    row.lookup[k] = entry;
  }
  results.push(row);
  console.log(JSON.stringify({ i, ...row }));
}
for (const k of drafts) {
  const m = runtimes.get(k).metrics().specDecode;
  console.log(`draft ${k}: drafts ${m.drafts}, draft tokens ${m.draftTokens}, accepted ${m.acceptedTokens} (${((100 * m.acceptedTokens) / m.draftTokens).toFixed(1)}%)`);
}
console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const runtime of runtimes.values()) await runtime.close();
