// edgellm against llama.cpp on one GGUF file, greedy, on the CPU (not part of npm test; needs `npm run
// build` and `npm --prefix bench install` for node-llama-cpp's prebuilt binaries).
//   node scripts/gguf-vs-llamacpp.mjs FILE.gguf
// Prints: token ids of a few texts (equal or where they differ), greedy continuations of plain prompts
// (with BOS) and of chat prompts in Gemma's turn format (when the file has no chat template; otherwise
// the file's template as llama.cpp renders it), each as "n/N tokens equal", and at the first difference
// llama.cpp's token and edgellm's top logprobs there (a near-tie or not).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [file, mode] = process.argv.slice(2);
const TEXTS = ['Hello world', 'def f(x):\n    return x**2  # 平方', 'Emoji 🤗 and accents: café, naïve, Ελληνικά', '1234567 3.14159 ٣²', '  leading spaces\n\n\nnewlines'];
const RAW = ['The capital of France is', 'def fibonacci(n):', 'Once upon a time, in a small village,', 'Photosynthesis is the process by which'];
const CHAT = ['What is the capital of France?', 'Write a Python function that returns the factorial of n.', 'Give me three tips for staying healthy.'];

if (mode === '--llama') {
  // The llama.cpp side, in a process of its own.
  const { getLlama, JinjaTemplateChatWrapper } = await import(new URL('../bench/node_modules/node-llama-cpp/dist/index.js', import.meta.url));
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ contextSize: 1024, sequences: 1, threads: 1 });
  const template = model.fileInfo.metadata.tokenizer?.chat_template;
  const wrapper = template ? new JinjaTemplateChatWrapper({ template, tokenizer: model.tokenizer }) : undefined;
  const stops = new Set([model.tokens.eos, model.tokens.eot].filter((t) => t != null));
  const greedy = async (ids, max, stop) => {
    const seq = context.getSequence();
    const out = [];
    for await (const t of seq.evaluate(ids, { temperature: 0 })) {
      if (stop && stops.has(t)) break;
      out.push(t);
      if (out.length >= max) break;
    }
    seq.dispose();
    return out;
  };
  const cases = [];
  for (const prompt of RAW) {
    const ids = [model.tokens.bos, ...model.tokenize(prompt, false)].filter((t) => t != null);
    cases.push({ name: prompt, ids, want: await greedy(ids, 64, false) });
  }
  for (const prompt of CHAT) {
    const ids = wrapper
      ? [...wrapper.generateContextState({ chatHistory: [{ type: 'user', text: prompt }, { type: 'model', response: [] }] }).contextText.tokenize(model.tokenizer)]
      : [...model.tokenize(`<bos><start_of_turn>user\n${prompt}<end_of_turn>\n<start_of_turn>model\n`, true)];
    cases.push({ name: `chat: ${prompt}`, ids, want: await greedy(ids, 256, true) });
  }
  process.send({ tokenized: TEXTS.map((t) => [...model.tokenize(t, true)]), cases, template: Boolean(template) });
  process.exit(0);
}

const child = fork(new URL(import.meta.url).pathname, [file, '--llama'], { stdio: 'inherit' });
const reference = await new Promise((resolve, reject) => {
  child.once('message', resolve);
  child.once('exit', (code) => reject(new Error(`the llama.cpp side exited (${code})`)));
});
const { createNodeRuntime } = await import(new URL('../dist/node.js', import.meta.url));
const cache = mkdtempSync(join(tmpdir(), 'edgellm-vs-llamacpp-'));
const rt = await createNodeRuntime({ model: file, device: 'cpu', threads: 2, cacheDir: cache, log: () => {} });
try {
  for (const [i, text] of TEXTS.entries()) {
    const ids = await rt.tokenize(undefined, { kind: 'text', text, addSpecialTokens: false });
    const same = JSON.stringify(ids) === JSON.stringify(reference.tokenized[i]);
    console.log(`ids ${same ? 'equal' : `DIFFER (${ids} vs llama.cpp ${reference.tokenized[i]})`}: ${JSON.stringify(text)}`);
  }
  const generate = async (tokens, maxTokens, logprobs) => {
    const ids = [];
    let top;
    const request = { input: { kind: 'tokens', tokens }, sampling: { temperature: 0 }, stop: [], ignoreEos: true, n: 1, maxTokens, logprobs };
    for await (const e of rt.generate(request)) if (e.type === 'delta') { ids.push(...e.tokens); top ??= e.logprobs?.[0]?.top; }
    return { ids, top };
  };
  for (const c of reference.cases) {
    const { ids } = await generate(c.ids, c.want.length);
    let k = 0;
    while (k < c.want.length && ids[k] === c.want[k]) k++;
    let where = '';
    if (k < c.want.length) {
      const { top } = await generate([...c.ids, ...c.want.slice(0, k)], 1, 3);
      where = `; llama.cpp took ${c.want[k]}, edgellm's top: ${top.map((t) => `${JSON.stringify(t.text)} (${t.token}) ${t.logprob.toFixed(3)}`).join(', ')}`;
    }
    console.log(`${JSON.stringify(c.name)}: ${k}/${c.want.length} tokens equal${where}`);
  }
} finally {
  await rt.close();
  rmSync(cache, { recursive: true, force: true });
}
process.exit(0);
