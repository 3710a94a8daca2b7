// Raw onnxruntime-node for the benchmark's children (the decode-step ceiling and the greedy loop): a session
// with the options edgellm's backend sets (graphOptimizationLevel 'all', intraOpNumThreads = threads, 0 =
// onnxruntime's default; its threads spin between ops, as edgellm's do unless `--thread-sleep`),
// the model's KV inputs, and the tensors a Llama decoder is fed.
import * as ort from 'onnxruntime-node';

export function openSession(path, threads) {
  return ort.InferenceSession.create(path, {
    graphOptimizationLevel: 'all',
    ...(threads ? { intraOpNumThreads: threads } : {}),
  });
}

/** past_key_values.* inputs, the present.* outputs that feed them, kv heads, head dim and dtype, from the metadata. */
export function kvLayout(session) {
  const past = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === past[0]);
  return {
    past,
    present: past.map((n) => n.replace('past_key_values.', 'present.')),
    kvHeads: Number(meta.shape[1]),
    headDim: Number(meta.shape[3]),
    type: meta.type === 'float16' ? 'float16' : 'float32',
    layers: past.length / 2,
  };
}

/** An int64 tensor of the given numbers. */
export function int64(values, dims) {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

/** An int64 tensor of ones: the attention mask of rows without padding. */
export function ones(dims) {
  return new ort.Tensor('int64', new BigInt64Array(dims.reduce((a, b) => a * b, 1)).fill(1n), dims);
}

/**
 * One past_key_values.* tensor [batch, kv, past, D]; `fill(n)` returns its data (a Float32Array, or a
 * Uint16Array of fp16 bits). Without `fill` it is zeros (nothing at all when past is 0).
 */
export function kvTensor(kv, batch, past, fill) {
  const n = batch * kv.kvHeads * past * kv.headDim;
  const data = fill ? fill(n) : kv.type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
  return new ort.Tensor(kv.type, data, [batch, kv.kvHeads, past, kv.headDim]);
}
