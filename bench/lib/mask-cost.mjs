// Micro-benchmark of constrained decoding's own cost per step, on a real tokenizer's vocabulary:
// the sampled-token check (the common case), a full mask computed cold, and applying a cached mask
// to a logits row. The "model" writes a fixed valid document with the longest matching tokens.
import { readFileSync } from 'node:fs';
import { CompiledConstraint, tokenByteTable } from '../../dist/index.js';

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
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
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
