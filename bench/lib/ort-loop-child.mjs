// Child process: a minimal greedy decode loop on raw onnxruntime-node, the fastest any JS engine can run
// this ONNX file (no engine, no HTTP, no sampling code).
//   argv: <model.onnx> <threads>
//   message {id, ids, maxNewTokens} -> {id, promptTokens, ttftMs, tokenTimesMs, totalMs, tokens}
// Prefill: the whole prompt in one run (attention_mask of ones, position_ids 0..T-1 when the model takes
// them, empty past_key_values.* [1,kv,0,D]). Then one token per run: a JS argmax over the last position's
// logits, present.* fed back as past_key_values.*. Never stops early. Session options as edgellm's backend
// sets them (see ort-session.mjs). Times as the pipeline child's: from the call to each token's argmax.
import { int64, kvLayout, kvTensor, ones, openSession } from './ort-session.mjs';

const [path, threadsArg] = process.argv.slice(2);
const t0 = performance.now();
const session = await openSession(path, Number(threadsArg) || 0);
const kv = kvLayout(session);
const hasPositions = session.inputNames.includes('position_ids');
process.send({ ready: true, loadMs: performance.now() - t0 });

/** fp16 bits to a number (only for fp16 logits). */
function half(h) {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

/** Index of the largest logit at the last position of logits [1, T, V]. */
function argmaxLast(logits) {
  const V = logits.dims[2];
  const row = logits.data.subarray((logits.dims[1] - 1) * V);
  const value = logits.data instanceof Uint16Array ? (i) => half(row[i]) : (i) => row[i];
  let best = 0;
  let max = value(0);
  for (let i = 1; i < V; i++) {
    const x = value(i);
    if (x > max) {
      max = x;
      best = i;
    }
  }
  return best;
}

function prefillFeeds(ids) {
  const T = ids.length;
  const f = { input_ids: int64(ids, [1, T]), attention_mask: ones([1, T]) };
  if (hasPositions) f.position_ids = int64(ids.map((_, i) => i), [1, T]);
  for (const name of kv.past) f[name] = kvTensor(kv, 1, 0);
  return f;
}

function stepFeeds(token, past, out) {
  const f = { input_ids: int64([token], [1, 1]), attention_mask: ones([1, past + 1]) };
  if (hasPositions) f.position_ids = int64([past], [1, 1]);
  kv.past.forEach((name, i) => (f[name] = out[kv.present[i]]));
  return f;
}

async function generate(ids, maxNewTokens) {
  const start = performance.now();
  const times = [];
  const tokens = [];
  let feeds = prefillFeeds(ids);
  for (let past = ids.length; ; past++) {
    const out = await session.run(feeds);
    const token = argmaxLast(out.logits);
    times.push(performance.now() - start);
    tokens.push(token);
    if (tokens.length >= maxNewTokens) break;
    feeds = stepFeeds(token, past, out);
  }
  return { promptTokens: ids.length, ttftMs: times[0], tokenTimesMs: times, totalMs: performance.now() - start, tokens };
}

process.on('message', async (msg) => {
  if (msg.exit) process.exit(0);
  try {
    process.send({ id: msg.id, ...(await generate(msg.ids, msg.maxNewTokens)) });
  } catch (error) {
    process.send({ id: msg.id, error: String(error?.stack ?? error) });
  }
});
