// Child process: transformers.js pipeline('text-generation') on the model, in-process, driven over IPC.
//   argv: <model-dir> <dtype> <threads>
//   message {id, prompt, maxNewTokens} -> {id, promptTokens, ttftMs, tokenTimesMs, text}
// Greedy (do_sample false), min_new_tokens = max_new_tokens (a random-weight model may emit eos).
// Times come from a streamer whose put() runs right after each token is sampled (before any decoding).
import { env, pipeline } from '@huggingface/transformers';

const [dir, dtype, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg) || 0;
env.allowRemoteModels = false;

const t0 = performance.now();
const generator = await pipeline('text-generation', dir, {
  dtype,
  device: 'cpu',
  ...(threads ? { session_options: { intraOpNumThreads: threads } } : {}),
});
const loadMs = performance.now() - t0;
process.send({ ready: true, loadMs });

process.on('message', async (msg) => {
  if (msg.exit) process.exit(0);
  try {
    let promptTokens = -1;
    const times = [];
    let start = 0;
    const streamer = {
      // generate() calls put() once with the prompt ids, then once per sampled token
      put(value) {
        const now = performance.now();
        if (promptTokens < 0) promptTokens = value[0].length;
        else times.push(now - start);
      },
      end() {},
    };
    start = performance.now();
    const out = await generator(msg.prompt, {
      max_new_tokens: msg.maxNewTokens,
      min_new_tokens: msg.maxNewTokens,
      do_sample: false,
      return_full_text: false,
      streamer,
    });
    const totalMs = performance.now() - start;
    process.send({ id: msg.id, promptTokens, ttftMs: times[0], tokenTimesMs: times, totalMs, text: out[0].generated_text });
  } catch (error) {
    process.send({ id: msg.id, error: String(error?.stack ?? error) });
  }
});
