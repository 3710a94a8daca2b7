// Bytes of weights an ONNX decoder reads per decoded token, from the file itself.
//
// Walks the ModelProto with a minimal protobuf reader (no decoding of tensor data): every graph
// initializer counts, except tables that are only ever the data input of a Gather (the token
// embedding: a decode step reads one row of it). A tied LM head that reuses the embedding through
// Transpose/MatMul therefore counts, as it should. External data ("<file>_data") is counted from
// the tensors' external_data "length" entries.
import { closeSync, openSync, readSync, statSync } from 'node:fs';

const ELEM_BYTES = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 0.5, 22: 0.5 };
const utf8 = new TextDecoder();

function* fields(buf, start, end) {
  let pos = start;
  const varint = () => {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = buf[pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
  };
  while (pos < end) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) yield { field, wire, value: varint() };
    else if (wire === 1) { pos += 8; yield { field, wire }; }
    else if (wire === 5) { pos += 4; yield { field, wire }; }
    else if (wire === 2) {
      const len = varint();
      const s = pos;
      pos += len;
      yield { field, wire, start: s, end: pos };
    } else throw new Error(`protobuf: wire type ${wire} at ${pos}`);
  }
}

function str(buf, f) {
  return utf8.decode(buf.subarray(f.start, f.end));
}


function readTensor(buf, start, end) {
  const t = { name: '', dims: [], dataType: 0, bytes: undefined, external: false };
  for (const f of fields(buf, start, end)) {
    if (f.field === 1 && f.wire === 0) t.dims.push(f.value);
    else if (f.field === 1 && f.wire === 2) {
      // packed int64 dims: decode varints directly
      let pos = f.start;
      while (pos < f.end) {
        let v = 0;
        let scale = 1;
        for (;;) {
          const b = buf[pos++];
          v += (b & 0x7f) * scale;
          if (b < 0x80) break;
          scale *= 128;
        }
        t.dims.push(v);
      }
    } else if (f.field === 2 && f.wire === 0) t.dataType = f.value;
    else if (f.field === 8 && f.wire === 2) t.name = str(buf, f);
    else if (f.field === 9 && f.wire === 2) t.bytes = f.end - f.start;
    else if (f.field === 13 && f.wire === 2) {
      t.external = true;
      let key = '';
      let value = '';
      for (const g of fields(buf, f.start, f.end)) {
        if (g.field === 1) key = str(buf, g);
        if (g.field === 2) value = str(buf, g);
      }
      if (key === 'length') t.bytes = Number(value);
    }
  }
  if (t.bytes === undefined) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    t.bytes = n * (ELEM_BYTES[t.dataType] ?? 4);
  }
  return t;
}

function readNode(buf, start, end) {
  const n = { inputs: [], outputs: [], opType: '' };
  for (const f of fields(buf, start, end)) {
    if (f.wire !== 2) continue;
    if (f.field === 1) n.inputs.push(str(buf, f));
    else if (f.field === 2) n.outputs.push(str(buf, f));
    else if (f.field === 4) n.opType = str(buf, f);
  }
  return n;
}

/** Reads the whole file (protobuf has no index); a 500 MB fp32 file takes a few hundred ms. */
export function analyzeOnnx(path) {
  const size = statSync(path).size;
  const buf = Buffer.allocUnsafe(size);
  const fd = openSync(path, 'r');
  try {
    let off = 0;
    while (off < size) off += readSync(fd, buf, off, Math.min(size - off, 1 << 28), off);
  } finally {
    closeSync(fd);
  }
  let graph;
  for (const f of fields(buf, 0, size)) if (f.field === 7 && f.wire === 2) graph = f;
  if (!graph) throw new Error(`${path}: no graph`);
  const inits = [];
  const nodes = [];
  for (const f of fields(buf, graph.start, graph.end)) {
    if (f.wire !== 2) continue;
    if (f.field === 5) inits.push(readTensor(buf, f.start, f.end));
    else if (f.field === 1) nodes.push(readNode(buf, f.start, f.end));
  }
  const consumers = new Map();
  for (const node of nodes) {
    node.inputs.forEach((name, idx) => {
      if (!consumers.has(name)) consumers.set(name, []);
      consumers.get(name).push({ op: node.opType, idx });
    });
  }
  const opCounts = {};
  for (const node of nodes) opCounts[node.opType] = (opCounts[node.opType] ?? 0) + 1;
  let total = 0;
  let gathered = 0;
  const gatheredNames = [];
  for (const t of inits) {
    total += t.bytes;
    const uses = consumers.get(t.name) ?? [];
    if (uses.length > 0 && uses.every((u) => u.op === 'Gather' && u.idx === 0) && t.dims.length >= 2) {
      gathered += t.bytes;
      gatheredNames.push(t.name);
    }
  }
  const hasDynamicQuant = (opCounts.DynamicQuantizeLinear ?? 0) > 0;
  const q8Format = hasDynamicQuant
    ? 'dynamic'
    : (opCounts.DequantizeLinear ?? 0) > 0
      ? 'weight-only (DequantizeLinear)'
      : (opCounts.MatMulNBits ?? 0) > 0
        ? 'MatMulNBits'
        : 'float';
  return {
    fileBytes: size,
    nodes: nodes.length,
    initializerBytes: total,
    gatherOnlyBytes: gathered,
    gatherOnly: gatheredNames,
    bytesPerToken: total - gathered,
    weightFormat: q8Format,
    batchInvariant: !hasDynamicQuant,
  };
}
