// Child process: llama.cpp through node-llama-cpp (prebuilt CPU binaries from npm, never built here), the
// peer of the race (bench/race.mjs).
//   argv: <model.gguf> <threads> <max sequences> <context per sequence>
//   {op: 'stream', text, promptTokens, maxTokens}    -> {ttftMs, tokenTimesMs, promptTokens}
//     (promptTokens 0: the text as it is, its special tokens (ChatML markers) parsed, no BOS added)
//   {op: 'streams', texts, promptTokens, maxTokens}  -> {wallMs, tokens, perStream: [{ttftMs, tokenTimesMs}]}
// Greedy (temperature 0), never stopping early (EOS is not checked: every stream makes maxTokens). Prompts
// are the same texts edgellm gets, tokenized by the GGUF's own tokenizer and cut or padded (by repeating
// the text) to exactly promptTokens. One context with <max sequences> sequences: concurrent streams are
// llama.cpp's parallel sequences, batched into one decode per step by node-llama-cpp.
import { getLlama } from 'node-llama-cpp';

const [path, threadsArg, seqArg, ctxArg] = process.argv.slice(2);
const threads = Number(threadsArg) || 0;
const sequences = Number(seqArg) || 16;
const perSequence = Number(ctxArg) || 1536;
const t0 = performance.now();
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const model = await llama.loadModel({ modelPath: path });
// contextSize is per sequence (node-llama-cpp gives llama.cpp contextSize × sequences).
const context = await model.createContext({ contextSize: perSequence, sequences, threads, batchSize: 512 });
process.send({ ready: true, loadMs: performance.now() - t0, llamaCpp: llama.llamaCppRelease?.release ?? null, build: llama.buildType });

function promptIds(text, n) {
  if (n === 0) return [...model.tokenize(text, true)];
  let ids = [...model.tokenize(text, false)];
  while (ids.length < n) ids = ids.concat([...model.tokenize(` ${text}`, false)]);
  const bos = model.tokens.bos;
  return bos !== null && bos !== undefined ? [bos, ...ids.slice(0, n - 1)] : ids.slice(0, n);
}

/** One greedy stream on `sequence`: times of each new token from the call. */
async function stream(sequence, text, promptTokens, maxTokens, start) {
  const ids = promptIds(text, promptTokens);
  const tokenTimesMs = [];
  for await (const token of sequence.evaluate(ids, { temperature: 0 })) {
    void token;
    tokenTimesMs.push(performance.now() - start);
    if (tokenTimesMs.length >= maxTokens) break;
  }
  await sequence.clearHistory();
  return { ttftMs: tokenTimesMs[0], tokenTimesMs, promptTokens: ids.length };
}

process.on('message', async (msg) => {
  if (msg.exit) process.exit(0);
  try {
    if (msg.op === 'stream') {
      const sequence = context.getSequence();
      try {
        process.send({ id: msg.id, ...(await stream(sequence, msg.text, msg.promptTokens, msg.maxTokens, performance.now())) });
      } finally {
        sequence.dispose();
      }
    } else if (msg.op === 'streams') {
      const seqs = msg.texts.map(() => context.getSequence());
      const start = performance.now();
      try {
        const perStream = await Promise.all(msg.texts.map((text, i) => stream(seqs[i], text, msg.promptTokens, msg.maxTokens, start)));
        const wallMs = Math.max(...perStream.map((s) => s.tokenTimesMs.at(-1)));
        process.send({ id: msg.id, wallMs, tokens: perStream.reduce((a, s) => a + s.tokenTimesMs.length, 0), perStream });
      } finally {
        for (const s of seqs) s.dispose();
      }
    } else throw new Error(`unknown op ${msg.op}`);
  } catch (error) {
    process.send({ id: msg.id, error: String(error?.stack ?? error) });
  }
});
