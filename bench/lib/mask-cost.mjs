// Micro-benchmark of constrained decoding's own cost per step, on a real tokenizer's vocabulary:
// the sampled-token check (the common case), a full mask computed cold, and applying a cached mask
// to a logits row. The "model" writes a fixed valid document with the longest matching tokens.
import { readFileSync } from 'node:fs';
import { CompiledConstraint, primeJsonStrings, tokenByteTable } from '../../dist/index.js';

export const NESTED_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    address: { type: 'object', properties: { city: { type: 'string' }, zip: { type: 'string', pattern: '^[0-9]{5}$' } }, required: ['city', 'zip'], additionalProperties: false },
    tags: { type: 'array', items: { type: 'object', properties: { k: { enum: ['a', 'b', 'c'] }, v: { type: 'number' } }, required: ['k', 'v'], additionalProperties: false } },
  },
  required: ['name', 'age', 'address', 'tags'],
  additionalProperties: false,
};
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const DOC = '{"name": "Alice Smith", "age": 42, "address": {"city": "Paris", "zip": "75001"}, "tags": [{"k": "a", "v": 1.5}, {"k": "b", "v": -3}]}';

export function maskCost(tokenizerJsonPath, schema = NESTED_SCHEMA, doc = DOC) {
  const tokenBytes = tokenByteTable(JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')));
  const V = tokenBytes.length;
  let t = performance.now();
  const c = new CompiledConstraint({ kind: 'jsonSchema', schema }, tokenBytes, V);
  const compileMs = performance.now() - t;
  const enc = new TextEncoder().encode(doc);
  const logits = new Float32Array(V);
  const ends = new Set();
  const allowUs = [];
  const coldMs = [];
  const applyMs = [];
  let s = c.start();
  for (let pos = 0; pos < enc.length; ) {
    let best = -1;
    let bestLen = 0;
    for (let id = 0; id < V; id++) {
      const b = tokenBytes[id];
      if (!b || b.length <= bestLen || pos + b.length > enc.length) continue;
      let ok = true;
      for (let i = 0; i < b.length && ok; i++) ok = b[i] === enc[pos + i];
      if (ok) {
        best = id;
        bestLen = b.length;
      }
    }
    t = performance.now();
    if (!s.allows(best, ends)) throw new Error(`mask-cost: the grammar refused ${JSON.stringify(doc.slice(pos))}`);
    allowUs.push((performance.now() - t) * 1000);
    t = performance.now();
    s.inMask(best); // computes (and caches) the full mask of this state
    coldMs.push(performance.now() - t);
    logits.fill(0);
    t = performance.now();
    s.maskLogits(logits, ends);
    applyMs.push(performance.now() - t);
    s = s.next(best);
    pos += bestLen;
  }
  return {
    vocab: V,
    trieNodes: c.masker.trie.nodeCount,
    compileMs,
    steps: allowUs.length,
    checkUsMedian: med(allowUs),
    fullMaskColdMsMedian: med(coldMs),
    fullMaskColdMsMax: Math.max(...coldMs),
    applyCachedMaskMsMedian: med(applyMs),
    complete: s.complete,
  };
}

/** CPU milliseconds of this process (user + system) spent in `fn`: steadier than wall time on a shared machine. */
function cpuMs(fn) {
  const a = process.cpuUsage();
  fn();
  const b = process.cpuUsage(a);
  return (b.user + b.system) / 1000;
}

/**
 * Cold masks inside JSON strings, in CPU ms (medians of `rounds`, each on a fresh copy of the token
 * table, so nothing is shared from an earlier round): the first string of a schema, a string in
 * another property of the same schema, and a string in a second schema on the same tokenizer;
 * each by the exact walk of the whole trie from the state (how every mask was computed before
 * masks were composed from shared context-free parts), as composed now, and composed after the
 * tokenizer's JSON string bodies were primed (`primeMs`: what priming costs, once per tokenizer).
 */
export function stringMaskCost(tokenizerJsonPath, rounds = 5) {
  const table = tokenByteTable(JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')));
  const enc = (t) => new TextEncoder().encode(t);
  const second = { type: 'object', properties: { title: { type: 'string' }, notes: { type: 'string' } }, required: ['title', 'notes'], additionalProperties: false };
  const cases = [
    ['firstString', NESTED_SCHEMA, '{"name": "Ali'],
    ['otherProperty', NESTED_SCHEMA, '{"name": "A", "age": 1, "address": {"city": "Par'],
    ['otherSchema', second, '{"title": "x", "notes": "Some'],
  ];
  const out = { exact: {}, composed: {}, primed: {}, primeMs: NaN };
  const primeMs = [];
  for (const how of ['exact', 'composed', 'primed']) {
    const times = Object.fromEntries(cases.map(([name]) => [name, []]));
    for (let r = 0; r < rounds; r++) {
      const tokenBytes = [...table]; // a new table: a new trie, nothing shared from the last round
      const compiled = new Map();
      const of = (schema) => compiled.get(schema) ?? compiled.set(schema, new CompiledConstraint({ kind: 'jsonSchema', schema }, tokenBytes, tokenBytes.length)).get(schema);
      of(NESTED_SCHEMA).masker.mask(of(NESTED_SCHEMA).matcher.initial); // the trie is built before timing
      // as the server does at a tokenizer's first constraint (ConstraintCache)
      if (how === 'primed') primeMs.push(cpuMs(() => primeJsonStrings(tokenBytes, tokenBytes.length)));
      for (const [name, schema, text] of cases) {
        const c = of(schema);
        const state = c.matcher.stepBytes(c.matcher.initial, enc(text));
        times[name].push(cpuMs(() => (how === 'exact' ? c.masker.exactMask(state) : c.masker.mask(state))));
      }
    }
    for (const [name] of cases) out[how][name] = med(times[name]);
  }
  out.primeMs = med(primeMs);
  return out;
}
