// Sizes of the web bundles, raw and gzipped (level 9), the wasm counted separately: `node scripts/bundle-sizes.mjs`
// after `npm run build`. A row counts the file and every chunk it imports statically; chunks loaded on
// demand (one onnxruntime-web build per device) are their own rows. Cloudflare's script limit applies to
// the compressed upload: 3 MB (Free), 10 MB (Paid).
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url);
const read = (path) => readFileSync(new URL(path, dist));
const dirOf = (path) => path.slice(0, path.lastIndexOf('/') + 1);

/** The file and the relative modules it imports statically (import/export ... from, bare import). */
function closure(path, seen = new Set()) {
  if (seen.has(path)) return seen;
  seen.add(path);
  const code = read(path).toString();
  for (const m of code.matchAll(/(?:\bfrom\s*|(?:^|[;}])\s*import\s*)["'](\.\/[^"']+\.js)["']/g)) closure(dirOf(path) + m[1].slice(2), seen);
  return seen;
}

function measure(files) {
  let raw = 0;
  let gzip = 0;
  for (const file of files) {
    const bytes = read(file);
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { raw, gzip };
}

const browser = readdirSync(new URL('browser/', dist));
const stub = (prefix) => `browser/${browser.find((f) => f.startsWith(prefix) && f.endsWith('.js'))}`;
const main = closure('browser/edgellm.js');
const onDemand = (prefix) => [...closure(stub(prefix))].filter((f) => !main.has(f));
const rows = [
  ['Worker', 'JS: `dist/worker.js`', ['worker.js']],
  ['Worker', 'wasm: `ort-wasm-simd-threaded.wasm`', ['ort-wasm-simd-threaded.wasm']],
  ['browser', 'JS: `dist/browser/edgellm.js` and its chunks', [...main]],
  ['browser, wasm', 'JS loaded for the device: onnxruntime-web/wasm', onDemand('ort.wasm.bundle')],
  ['browser, wasm', 'wasm: `ort-wasm-simd-threaded.wasm`', ['browser/ort-wasm-simd-threaded.wasm']],
  ['browser, WebGPU', 'JS loaded for the device: onnxruntime-web/webgpu', onDemand('ort.webgpu.bundle')],
  ['browser, WebGPU', 'wasm: `ort-wasm-simd-threaded.asyncify.wasm`', ['browser/ort-wasm-simd-threaded.asyncify.wasm']],
  ['library', 'JS: `dist/web.js` (dependencies left to your bundler)', [...closure('web.js')]],
];
const mb = (n) => (n < 1024 * 1024 ? `${(n / 1024).toFixed(0)} KB` : `${(n / 1024 / 1024).toFixed(2)} MB`);
console.log('| bundle | what | raw | gzip |\n|---|---|---|---|');
for (const [bundle, what, files] of rows) {
  const s = measure(files);
  console.log(`| ${bundle} | ${what} | ${mb(s.raw)} | ${mb(s.gzip)} |`);
}
const upload = measure(['worker.js', 'ort-wasm-simd-threaded.wasm']).gzip;
const plan = upload <= 3 * 1024 * 1024 ? 'Free (3 MB) and Paid (10 MB)' : upload <= 10 * 1024 * 1024 ? 'Paid (10 MB), not Free (3 MB)' : 'neither plan';
console.log(`\nWorker upload, gzipped: ${mb(upload)}: fits ${plan}.`);
