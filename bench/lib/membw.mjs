// Memory read bandwidth from Node: a WebAssembly SIMD loop (4 independent i32x4 accumulators, so it
// is bound by loads, not by an add chain) sums a 256 MiB buffer per thread, 8x a 32 MiB L3. Run in
// 1 and in N worker threads at once; a pass's rate is bytes / its time, summed over the threads.
// This is the read-heavy figure PERF-BASELINE.md §2 measures with C (STREAM-like "sum").
import { Worker } from 'node:worker_threads';

// (module (import "e" "m" (memory 1)) (func (export "r") (param i32 i32) (result i32) ...)):
// loop { a+=load(p); b+=load(p+16); c+=load(p+32); d+=load(p+48); p+=64 } while p < end
const WASM = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type: (i32,i32)->i32
  0x02, 0x08, 0x01, 0x01, 0x65, 0x01, 0x6d, 0x02, 0x00, 0x01, // import e.m memory min 1
  0x03, 0x02, 0x01, 0x00, // func 0: type 0
  0x07, 0x05, 0x01, 0x01, 0x72, 0x00, 0x00, // export "r"
  0x0a, 0x5e, 0x01, 0x5c, // code section (94 bytes): 1 body of 92 bytes
  0x01, 0x04, 0x7b, // locals: 4 x v128 (2..5)
  0x03, 0x40, // loop
  0x20, 0x02, 0x20, 0x00, 0xfd, 0x00, 0x04, 0x00, 0xfd, 0xae, 0x01, 0x21, 0x02,
  0x20, 0x03, 0x20, 0x00, 0xfd, 0x00, 0x04, 0x10, 0xfd, 0xae, 0x01, 0x21, 0x03,
  0x20, 0x04, 0x20, 0x00, 0xfd, 0x00, 0x04, 0x20, 0xfd, 0xae, 0x01, 0x21, 0x04,
  0x20, 0x05, 0x20, 0x00, 0xfd, 0x00, 0x04, 0x30, 0xfd, 0xae, 0x01, 0x21, 0x05,
  0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x22, 0x00, 0x20, 0x01, 0x49, 0x0d, 0x00,
  0x0b, // end loop
  0x20, 0x02, 0x20, 0x03, 0xfd, 0xae, 0x01, 0x20, 0x04, 0xfd, 0xae, 0x01, 0x20, 0x05, 0xfd, 0xae, 0x01,
  0xfd, 0x1b, 0x00, // i32x4.extract_lane 0
  0x0b, // end func
]);

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { wasm, bytes, passes, sab } = workerData;
const mem = new WebAssembly.Memory({ initial: bytes / 65536 });
const inst = new WebAssembly.Instance(new WebAssembly.Module(wasm), { e: { m: mem } });
const u32 = new Uint32Array(mem.buffer);
for (let i = 0; i < u32.length; i++) u32[i] = i; // touch every page: untouched pages read as the shared zero page
let sink = 0;
for (let i = 0; i < 64; i++) sink ^= inst.exports.r(0, 1 << 20); // warm up: V8 tiers the function up to optimized code after some calls
const flag = new Int32Array(sab);
Atomics.add(flag, 1, 1);
Atomics.wait(flag, 0, 0);
const times = [];
for (let p = 0; p < passes; p++) {
  const t = performance.now();
  sink ^= inst.exports.r(0, bytes);
  times.push(performance.now() - t);
}
parentPort.postMessage({ times, sink });
`;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}

async function runThreads(threads, bytes, passes) {
  const sab = new SharedArrayBuffer(8);
  const flag = new Int32Array(sab);
  const workers = [];
  const results = [];
  for (let i = 0; i < threads; i++) {
    const w = new Worker(WORKER, { eval: true, workerData: { wasm: WASM, bytes, passes, sab } });
    workers.push(w);
    results.push(
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }),
    );
  }
  try {
    while (Atomics.load(flag, 1) < threads) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const out = await Promise.all(results);
    // pass k of every thread ran at about the same time: sum their rates
    const rates = [];
    for (let k = 0; k < passes; k++) rates.push(out.reduce((sum, r) => sum + bytes / (r.times[k] / 1000), 0) / 1e9);
    return rates;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Read bandwidth in GB/s (1e9 bytes/s): median and range over passes, for 1 and `threads` threads. */
export async function measureBandwidth({ threads = 2, mib = 256, passes = 9 } = {}) {
  const bytes = mib * 1024 * 1024;
  const out = { method: `WebAssembly SIMD sum over ${mib} MiB per thread, ${passes} passes`, byThreads: {} };
  for (const n of [...new Set([1, threads])]) {
    const rates = await runThreads(n, bytes, passes);
    out.byThreads[n] = { medianGBs: median(rates), minGBs: Math.min(...rates), maxGBs: Math.max(...rates), passes: rates };
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await measureBandwidth({ threads: Number(process.argv[2] ?? 2) });
  console.log(JSON.stringify(r, (k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v), 1));
}
