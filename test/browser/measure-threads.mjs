// Decode speed of examples/browser in headless Chromium, single- vs multi-threaded wasm (not a test:
// timings are noisy on a shared machine). The page runs the app itself (?in=page) on a cross-origin
// isolated server, so onnxruntime-web may start threads; each run is a fresh page and context.
//   npm run build && node test/browser/measure-threads.mjs [model] [threads,...] [rounds]
//   e.g. node test/browser/measure-threads.mjs /models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf 1,2 3
// MODE=sw measures the Service Worker instead (always 1 thread); DTYPE=fp32 widens a GGUF's weights;
// each run also times a reload (the files then come from the cache).
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startServer } from '../../examples/browser/serve.mjs';

const CHROMIUM_PATH = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => path && existsSync(path));

const [model = 'karpathy__stories260K', threadList = '1,2', roundsArg = '3'] = process.argv.slice(2);
const rounds = Number(roundsArg);
const MAX_TOKENS = Number(process.env.MAX_TOKENS ?? 128);
const models = process.env.EDGELLM_SHARED_MODELS ?? new URL('../../../shared/models/', import.meta.url).pathname;

const server = await startServer({ port: 0, models, isolate: process.env.ISOLATE !== '0' });
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const results = [];
try {
  for (let round = 0; round < rounds; round++) {
    for (const threads of threadList.split(',').map(Number)) {
      const context = await browser.newContext();
      const page = await context.newPage();
      /** @type {string[]} */
      const warnings = [];
      page.on('console', (m) => (m.type() === 'warning' || m.type() === 'error') && warnings.push(m.text()));
      const started = Date.now();
      const inPage = process.env.MODE !== 'sw' ? `&in=page&threads=${threads}` : '';
      await page.goto(`${server.url}/?model=${encodeURIComponent(model)}${inPage}${process.env.DTYPE ? `&dtype=${process.env.DTYPE}` : ''}`);
      await page.waitForFunction(() => /loaded in|Error/.test(String(document.getElementById('status')?.textContent)), undefined, { timeout: 600_000 });
      const status = await page.locator('#status').innerText();
      const loadS = (Date.now() - started) / 1000;
      if (status.startsWith('Error')) throw new Error(status);
      const run = await page.evaluate(async (maxTokens) => {
        const name = String(document.getElementById('status')?.textContent).split(' (')[0];
        const response = await /** @type {any} */ (window).edgellmFetch('/v1/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: name, prompt: 'Once upon a time', max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
        });
        /** @type {number[]} */
        const times = [];
        let usage;
        let text = '';
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const data = buffer.slice(0, end).replace(/^data: /, '');
            buffer = buffer.slice(end + 2);
            if (data === '[DONE]') continue;
            const chunk = JSON.parse(data);
            if (chunk.usage) usage = chunk.usage;
            if (chunk.choices?.[0]?.text) {
              times.push(performance.now());
              text += chunk.choices[0].text;
            }
          }
        }
        return { tokens: usage?.completion_tokens, first: times[0], last: times.at(-1), chunks: times.length, text };
      }, MAX_TOKENS);
      const msPerToken = (Number(run.last) - Number(run.first)) / (run.tokens - 1);
      const threadsLine = (await page.evaluate(() => /** @type {any} */ (window).edgellmProgress.find((/** @type {any} */ e) => e.stage === 'threads')?.message)) ?? '';
      const isolated = await page.evaluate(() => crossOriginIsolated);
      const workers = page.workers().length; // onnxruntime-web's pthreads are dedicated Workers of the page
      results.push({ threads, loadS, msPerToken, tokens: run.tokens });
      if (process.env.MODE === 'sw') {
        const cdp = await context.newCDPSession(page);
        await cdp.send('ServiceWorker.enable');
        await cdp.send('ServiceWorker.stopAllWorkers');
      }
      const reloaded = Date.now();
      await page.reload();
      await page.waitForFunction(() => /loaded in|Error/.test(String(document.getElementById('status')?.textContent)), undefined, { timeout: 600_000 });
      console.log(`  reload: ${((Date.now() - reloaded) / 1000).toFixed(1)} s: ${await page.locator('#status').innerText()}`);
      if (warnings.length) console.log(`  console: ${warnings.join(' | ')}`);
      if (round === 0) {
        const steps = await page.evaluate(() => /** @type {any} */ (window).edgellmProgress.filter((/** @type {any} */ e) => e.ms !== undefined && e.stage !== 'ready').map((/** @type {any} */ e) => `${e.stage} ${e.ms} ms`));
        console.log(`  crossOriginIsolated: ${isolated}, ${workers} Workers; ${steps.join(', ')}`);
      }
      console.log(`round ${round} threads ${threads}: load ${loadS.toFixed(1)} s, decode ${msPerToken.toFixed(2)} ms/token (${(1000 / msPerToken).toFixed(0)} tokens/s) over ${run.tokens} tokens; ${threadsLine}`);
      if (round === 0) console.log(`  ${status}\n  text: ${JSON.stringify(run.text.slice(0, 120))}`);
      await context.close();
    }
  }
} finally {
  await browser.close();
  await server.close();
}
const median = (/** @type {number[]} */ xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const threads of threadList.split(',').map(Number)) {
  const mine = results.filter((r) => r.threads === threads);
  console.log(`threads ${threads}: median decode ${median(mine.map((r) => r.msPerToken)).toFixed(2)} ms/token, median load ${median(mine.map((r) => r.loadS)).toFixed(1)} s (${mine.length} runs)`);
}
