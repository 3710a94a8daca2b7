#!/usr/bin/env node
// Measures onnxruntime-web's wasm memory in workerd (Miniflare) after loading a model and answering
// one request, per ONNX file and dtype: the numbers behind the Worker's memory estimate
// (src/adapters/web/memory-estimate.ts). Model files go through an R2 binding (no 25 MiB asset limit).
//   npm run build && node scripts/measure-wasm-memory.mjs <models folder> <model>[:dtype,dtype] | <file.gguf> ...
// e.g. node scripts/measure-wasm-memory.mjs ../shared/models karpathy__stories260K:fp32,q8,q4
// A .gguf (relative to the models folder) is converted in the isolate as the Worker does; its row gives
// the GGUF file's size (the converted graph's is in the Worker's refusal message with a small budget).
// Synthetic larger models: ../shared/tools/make-synthetic-llama.py (see bench/make-models.sh); the
// README's used --preset smollm2-135m --hidden 384 --heads 6 --kv-heads 2 --intermediate 1024 --layers
// 2|8|16. fp16 files from those: onnxconverter-common's float16.convert_float_to_float16(model), then
// every Cast node's `to` = FLOAT (1) set to FLOAT16 (10): the converter leaves some casting to float32
// with float16-typed outputs, which onnxruntime refuses.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FILES = { fp32: 'model.onnx', fp16: 'model_fp16.onnx', q8: 'model_quantized.onnx', q4: 'model_q4.onnx' };
const [modelsDir, ...specs] = process.argv.slice(2);
if (!modelsDir || specs.length === 0) {
  console.error('usage: node scripts/measure-wasm-memory.mjs <models folder> <model>[:dtype,...] ...');
  process.exit(2);
}
const main = join(ROOT, 'dist/worker.js');
const walk = (d) => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
const MB = (n) => (n / 1024 / 1024).toFixed(1);

console.log('| model | dtype | ONNX file MB | wasm memory MB | memory / file |');
console.log('|---|---|---|---|---|');
for (const spec of specs) {
  const gguf = spec.endsWith('.gguf') ? join(modelsDir, spec) : undefined;
  const [model, dtypeList] = gguf ? [spec.split('/').pop(), 'gguf'] : spec.split(':');
  for (const dtype of (dtypeList ?? 'fp32').split(',')) {
    const dir = join(modelsDir, model);
    const onnx = gguf ?? join(dir, 'onnx', FILES[dtype]);
    const mf = new Miniflare({
      modules: [
        { type: 'ESModule', path: main, contents: readFileSync(main, 'utf8') },
        { type: 'CompiledWasm', path: join(dirname(main), 'ort-wasm-simd-threaded.wasm'), contents: readFileSync(join(dirname(main), 'ort-wasm-simd-threaded.wasm')) },
      ],
      modulesRoot: dirname(main),
      compatibilityDate: '2025-09-01',
      compatibilityFlags: ['enable_request_signal'],
      durableObjects: { EDGELLM: 'EdgellmModel' },
      r2Buckets: ['MODELS'],
      bindings: { MODEL: model, ...(gguf ? {} : { DTYPE: dtype }), EMBEDDING_MODEL: '', MAX_MODEL_BYTES: String(4 * 1024 ** 3) },
    });
    try {
      const url = (await mf.ready).href.replace(/\/$/, '');
      const bucket = await mf.getR2Bucket('MODELS');
      if (gguf) await bucket.put(model, readFileSync(gguf));
      else for (const file of walk(dir)) await bucket.put(`${model}/${relative(dir, file)}`, readFileSync(file));
      const answer = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8 }) });
      if (!answer.ok) throw new Error(`${answer.status} ${await answer.text()}`);
      await answer.text();
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const memory = Number(/^edgellm:wasm_memory_bytes (\d+)$/m.exec(metrics)?.[1]);
      // The file and its external data (the Worker reads exactly these; see its load log).
      const external = gguf ? [] : [...readFileSync(onnx).toString('latin1').matchAll(/location\x12.([\w.-]+\.data)/g)].map((m) => m[1]);
      const size = [onnx, ...new Set(external).values()].reduce((n, f) => n + statSync(f === onnx ? f : join(dir, 'onnx', f)).size, 0);
      console.log(`| ${model} | ${dtype} | ${MB(size)} | ${MB(memory)} | ${(memory / size).toFixed(2)} |`);
    } catch (error) {
      console.log(`| ${model} | ${dtype} | failed: ${String(error.message).slice(0, 200)} | | |`);
    } finally {
      await mf.dispose();
    }
  }
}
