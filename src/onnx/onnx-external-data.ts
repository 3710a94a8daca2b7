/**
 * Which external-data files an ONNX model needs: the `location` of every initializer stored
 * outside the model file. A host that loads models through fetch has no directory to look in,
 * so it asks the model (the file names do not follow the model's: model_fp16.onnx may use
 * model.onnx.data).
 * @module
 */
import { decodeString, ProtoReader, WireType } from './protobuf.js';

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_EXTERNAL_DATA = 13;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;

export function externalDataFiles(model: Uint8Array): string[] {
  const files = new Set<string>();
  for (const m of new ProtoReader(model).fields()) {
    if (m.field !== MODEL_GRAPH || m.wire !== WireType.LEN) continue;
    for (const g of new ProtoReader(m.bytes!).fields()) {
      if (g.field !== GRAPH_INITIALIZER || !g.bytes) continue;
      for (const t of new ProtoReader(g.bytes).fields()) {
        if (t.field !== TENSOR_EXTERNAL_DATA || !t.bytes) continue;
        const entry = new Map<number, string>();
        for (const e of new ProtoReader(t.bytes).fields()) if (e.bytes) entry.set(e.field, decodeString(e.bytes));
        if (entry.get(ENTRY_KEY) === 'location' && entry.get(ENTRY_VALUE)) files.add(entry.get(ENTRY_VALUE)!);
      }
    }
  }
  return [...files];
}
