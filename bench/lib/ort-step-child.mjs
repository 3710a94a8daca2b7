// Child process: the ceiling of a decode step, timed on raw onnxruntime-node (no engine, no HTTP).
//   argv: <model.onnx> <threads>
//   message {id, batch, past, warmup, steps} -> {id, stepMs: [...]}
// One InferenceSession.run of a Llama decoder step as transformers.js / edgellm feed it: input_ids [B,1],
// attention_mask [B,past+1] of ones, position_ids [B,1] = past, past_key_values.* [B,kv,past,D] (random),
// fetching logits and every present.* (the engine needs them). Session options as edgellm's backend sets
// them (see ort-session.mjs).
import { int64, kvLayout, kvTensor, ones, openSession } from './ort-session.mjs';

const [path, threadsArg] = process.argv.slice(2);
const t0 = performance.now();
const session = await openSession(path, Number(threadsArg) || 0);
const kv = kvLayout(session);
process.send({ ready: true, loadMs: performance.now() - t0, kvHeads: kv.kvHeads, headDim: kv.headDim, layers: kv.layers });

const random = (n) => (kv.type === 'float16' ? new Uint16Array(n).fill(0x2e66) : Float32Array.from({ length: n }, () => Math.random() - 0.5));

function feeds(batch, past) {
  const f = {
    input_ids: int64(Array.from({ length: batch }, (_, i) => 100 + i), [batch, 1]),
    attention_mask: ones([batch, past + 1]),
  };
  if (session.inputNames.includes('position_ids')) f.position_ids = int64(new Array(batch).fill(past), [batch, 1]);
  for (const name of kv.past) f[name] = kvTensor(kv, batch, past, random);
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
