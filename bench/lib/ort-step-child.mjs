// Child process: the ceiling of a decode step, timed on raw onnxruntime-node (no engine, no HTTP).
//   argv: <model.onnx> <threads>
//   message {id, batch, past, warmup, steps} -> {id, stepMs: [...]}
// One InferenceSession.run of a Llama decoder step as transformers.js / edgellm feed it: input_ids [B,1],
// attention_mask [B,past+1] of ones, position_ids [B,1] = past, past_key_values.* [B,kv,past,D] (random),
// fetching logits and every present.* (the engine needs them). Session options as edgellm's backend sets
// them: graphOptimizationLevel 'all', intraOpNumThreads = threads (0 = onnxruntime's default).
import * as ort from 'onnxruntime-node';

const [path, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg) || 0;
const t0 = performance.now();
const session = await ort.InferenceSession.create(path, {
  graphOptimizationLevel: 'all',
  ...(threads ? { intraOpNumThreads: threads } : {}),
});
const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
const [kvHeads, headDim] = [Number(meta.shape[1]), Number(meta.shape[3])];
const kvType = meta.type === 'float16' ? 'float16' : 'float32';
process.send({ ready: true, loadMs: performance.now() - t0, kvHeads, headDim, layers: pastNames.length / 2 });

function feeds(batch, past) {
  const f = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, (_, i) => BigInt(100 + i)), [batch, 1]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * (past + 1)).fill(1n), [batch, past + 1]),
  };
  if (session.inputNames.includes('position_ids')) {
    f.position_ids = new ort.Tensor('int64', new BigInt64Array(batch).fill(BigInt(past)), [batch, 1]);
  }
  const n = batch * kvHeads * past * headDim;
  for (const name of pastNames) {
    const data = kvType === 'float16' ? new Uint16Array(n).fill(0x2e66) : Float32Array.from({ length: n }, () => Math.random() - 0.5);
    f[name] = new ort.Tensor(kvType, data, [batch, kvHeads, past, headDim]);
  }
  return f;
}

process.on('message', async (msg) => {
  if (msg.exit) process.exit(0);
  try {
    const f = feeds(msg.batch, msg.past);
    const stepMs = [];
    for (let i = 0; i < msg.warmup + msg.steps; i++) {
      const t = performance.now();
      const out = await session.run(f);
      const dt = performance.now() - t;
      if (i >= msg.warmup) stepMs.push(dt);
      for (const v of Object.values(out)) v.dispose?.();
    }
    process.send({ id: msg.id, stepMs });
  } catch (error) {
    process.send({ id: msg.id, error: String(error?.stack ?? error) });
  }
});
